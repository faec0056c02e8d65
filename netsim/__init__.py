"""Channel emulator: link models, Mahimahi traces, loss models, clock and TCP relay. Imports nothing of ours."""
