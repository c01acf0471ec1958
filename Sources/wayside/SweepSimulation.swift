import ArgumentParser
import Sweep

/// The simulated executor comes with the simulator's experiment runner
/// (`wayside run --simulate`, branch `sim`); until that is merged a simulated
/// sweep is refused before anything runs.
func simulatedExecutor(assertions: [String]) throws -> SweepExecutor {
    throw ValidationError("simulate: true needs the simulated experiment runner (`wayside run --simulate`), which this build does not have yet")
}
