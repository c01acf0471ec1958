// Module TCP: one TCP connection as a pure state machine (issue 3).
