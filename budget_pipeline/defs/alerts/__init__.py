"""Alert sensors: pauses, failed checks, failed runs, partly applied executions, score drift."""
