// Module Mobility: drives to coverage timelines (issue 7).
