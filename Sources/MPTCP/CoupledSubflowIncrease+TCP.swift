import TCP

/// The TCP engine's NewReno calls this in congestion avoidance when MPTCP
/// installs it as `NewReno.coupling` (RFC 6356 §3 coupling of increases).
extension CoupledSubflowIncrease: CoupledIncrease {}
