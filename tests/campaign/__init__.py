"""A seeded fault campaign: thousands of random dispatches through the real service code.

`python -m tests.campaign [--backend memory|moto] --count N [--seed S] [--faults X] [--only I]` runs
it and prints what happened; `test_campaign.py` runs it small in CI, in both modes. `memory`
(the default) runs the service over the in-memory repository, faults at its ports; `moto` runs it
over the real DynamoDB, Step Functions, Scheduler and SQS adapters under moto, with faults also
injected into botocore's requests (throttles, 500s, lost connections, and writes applied whose
answer was lost). The modules, outside in:

- `campaign`: builds the world, runs it, checks every dispatch, returns a `CampaignResult`;
- `world`: the discrete-event simulation (clock, event heap, the real DispatchService,
  CallbackRelay and Sweeper over the in-memory repository);
- `records`: each dispatch's plan, and what happened at its edges (sends, webhooks, callbacks);
- `adapters`: the fault-injecting provider, timer, queue, callback receiver and repository;
- `aws`: the moto mode: the AWS adapters as bootstrap builds them, and the faults on the wire;
- `channel`: what a provider reports about a message it accepted, with status faults;
- `faults`: the probability of every fault, and the simulated process death;
- `oracle` and `invariants`: what should have happened, from the simulation's own records,
  and the checks that compare it with what the application was told;
- `summary`: the printed counts and reproducers.
"""
