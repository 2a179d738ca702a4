"""Pure domain core: the dispatch aggregate and the state machine that moves it. Stdlib only."""
