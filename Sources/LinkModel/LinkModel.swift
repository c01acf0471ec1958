// Module LinkModel: pure link models (issues 3 and 11).
