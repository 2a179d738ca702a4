"""A seeded fault campaign: thousands of random dispatches through the real service code.

`python -m tests.campaign --count N [--seed S] [--faults X] [--only I]` runs it and prints what happened;
`test_campaign.py` runs it small in CI. The modules, outside in:

- `campaign`: builds the world, runs it, checks every dispatch, returns a `CampaignResult`;
- `world`: the discrete-event simulation (clock, event heap, the real DispatchService,
  CallbackRelay and Sweeper over the in-memory repository);
- `records`: each dispatch's plan, and what happened at its edges (sends, webhooks, callbacks);
- `adapters`: the fault-injecting provider, timer, queue, callback receiver and repository;
- `channel`: what a provider reports about a message it accepted, with status faults;
- `faults`: the probability of every fault, and the simulated process death;
- `oracle` and `invariants`: what should have happened, from the simulation's own records,
  and the checks that compare it with what the application was told;
- `summary`: the printed counts and reproducers.
"""
