// Module Config: YAML decoding with located errors (issue 6).
