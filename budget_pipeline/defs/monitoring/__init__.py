"""Weekly monitoring (SPEC §9): utilisation, trigger fire rate, learning resets, score drift, go-live order."""
