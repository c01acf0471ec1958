// Module Simulation: deterministic discrete-event network (issue 3).
