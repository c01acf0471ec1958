// Module Testbed: topologies, plans, build and teardown (issue 6).
