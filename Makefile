# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
# AWS: which stage of .chalice/config.json to package or deploy, and the stack's name.
STAGE  ?= prod
STACK  ?= dispatch-$(STAGE)

.PHONY: run test install openapi admin package deploy bench campaign fuzz clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

run: install  ## Serve the API on http://127.0.0.1:$(PORT) with AWS emulated locally.
	PORT=$(PORT) $(BIN)/python scripts/local_stack.py

test: install  ## Lint and type-check, then run every test.
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2

bench: install  ## Print every figure of docs/benchmarks.md; QUICK=1 for a smoke run, ONLY=calls,cost for some.
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

COUNT ?= 10000
BACKEND ?= memory
campaign: install  ## Seeded fault campaign over the real service code; COUNT=... SEED=... BACKEND=memory|moto.
	$(BIN)/python -m tests.campaign --backend $(BACKEND) --count $(COUNT) $(if $(SEED),--seed $(SEED))

REQUESTS ?= 1000
fuzz: install  ## Fuzz the document, the webhooks and the framework's edges: REQUESTS=... SEED=... ONLY=document,webhooks,edges
	$(BIN)/python scripts/fuzz.py --requests $(REQUESTS) $(if $(SEED),--seed $(SEED)) $(if $(ONLY),--only $(ONLY))

openapi: install  ## Regenerate the OpenAPI component schemas from the pydantic models.
	$(BIN)/python scripts/gen_openapi.py

admin: install  ## Operator command, e.g. make admin ARGS="list"
	$(BIN)/python scripts/dispatch_admin.py $(ARGS)

package: install  ## Write build/$(STAGE)/sam.json: the whole stack as one CloudFormation template.
	$(BIN)/python scripts/package.py --stage $(STAGE)

deploy: package  ## Deploy build/$(STAGE) as stack $(STACK); needs the AWS CLI, credentials and BUCKET.
	@command -v aws >/dev/null 2>&1 || { echo "deploy needs the AWS CLI: https://docs.aws.amazon.com/cli/"; exit 2; }
	@test -n "$(BUCKET)" || { echo "set BUCKET=<an S3 bucket in the target region for the code package>"; exit 2; }
	aws cloudformation package --template-file build/$(STAGE)/sam.json \
		--s3-bucket $(BUCKET) --s3-prefix $(STACK) --output-template-file build/$(STAGE)/packaged.yaml
	aws cloudformation deploy --template-file build/$(STAGE)/packaged.yaml --stack-name $(STACK) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset
	aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs" --output table

clean:
	rm -rf $(VENV) .local .pytest_cache .hypothesis .mypy_cache build
