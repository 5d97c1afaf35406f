# Infrastructure as code (issue 4): offline template checks, one-command deploy and teardown.
# Included by the Makefile. The AWS tools live in their own venvs, because their pins clash with
# the app's: .venv-sam holds aws-sam-cli + cfn-lint (requirements-sam.txt) and .venv-iac holds
# checkov (requirements-iac.txt, which pins an older boto3 than aws-sam-cli's).
#
#   make check-template            cfn-lint, sam validate --lint and checkov; offline
#   make deploy [ENV=dev|prod]     pre-flight checks, sam build + sam deploy, upload site/,
#                                  invalidate CloudFront
#   make smoke [ENV=dev|prod]      health, one classification and the page of the deployed stack
#   make delete [ENV=dev|prod]     empty the site and batch results buckets, then sam delete
#   make batch URL=s3://bucket/prefix/ [OUTPUT=file.csv] [ENV=...]   classify a bucket on stack ENV
#
# ENV names a samconfig.toml environment (checked before anything runs). REGION=... overrides
# the region of the AWS profile (or AWS_DEFAULT_REGION); AWS_PROFILE=... selects the
# credentials; AWS_SAM_STACK_NAME=... points `make smoke` at any stack.

ENV ?= default
REGION ?=
IAC_PYTHON ?= python3
SAM_VENV := .venv-sam
IAC_VENV := .venv-iac
SAM_STAMP := $(SAM_VENV)/.installed
IAC_STAMP := $(IAC_VENV)/.installed
SAM := $(SAM_VENV)/bin/sam
CFN_LINT := $(SAM_VENV)/bin/cfn-lint
CHECKOV := $(IAC_VENV)/bin/checkov
TEMPLATE := template.yaml

export SAM_CLI_TELEMETRY := 0
# checkov offline: no policy-metadata download, no PyPI version check.
CHECKOV_ENV := BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true
REGION_FLAG = $(if $(REGION),--region $(REGION))
AWS_ENV = $(if $(REGION),AWS_DEFAULT_REGION=$(REGION))
# The environments of samconfig.toml and the stack name of $(ENV): one source of truth for names.
ENVIRONMENTS = $(shell $(IAC_PYTHON) -c 'import tomllib; print(*(k for k, v in tomllib.load(open("samconfig.toml", "rb")).items() if isinstance(v, dict)))')
STACK_NAME = $(shell $(IAC_PYTHON) -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["global"]["parameters"]["stack_name"])' $(ENV))
SMOKE_STACK = $(or $(AWS_SAM_STACK_NAME),$(STACK_NAME))

.PHONY: check-template check-env deploy smoke delete iac-tools batch

$(SAM_STAMP): requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(IAC_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

$(IAC_STAMP): requirements-iac.txt
	test -x $(IAC_VENV)/bin/python || $(IAC_PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
	touch $@

iac-tools: $(SAM_STAMP) $(IAC_STAMP)  ## create .venv-sam (SAM CLI, cfn-lint) and .venv-iac (checkov)

check-template: $(SAM_STAMP) $(IAC_STAMP)  ## offline checks of template.yaml: cfn-lint, sam validate --lint, checkov
	$(CFN_LINT) $(TEMPLATE)
	$(SAM) validate --lint --region us-east-1 --template-file $(TEMPLATE)
	$(CHECKOV_ENV) $(CHECKOV) --file $(TEMPLATE) --framework cloudformation --skip-download --compact --quiet

# A prerequisite, not a recipe line: make expands a target's whole recipe (STACK_NAME included)
# before running its first line, so an unknown ENV must stop the build before that.
check-env:
	@$(if $(filter $(ENV),$(ENVIRONMENTS)),:,$(error ENV=$(ENV) is not an environment in samconfig.toml; use one of: $(ENVIRONMENTS)))

deploy: check-env $(SAM_STAMP)  ## check, build and deploy stack ENV (default|dev|prod), upload site/, print the URL
	$(AWS_ENV) $(IAC_PYTHON) scripts/preflight.py $(ENV)
	$(SAM) build --config-env $(ENV) $(REGION_FLAG)
	$(SAM) deploy --config-env $(ENV) $(REGION_FLAG)
	$(AWS_ENV) scripts/deploy_site.sh $(STACK_NAME)

smoke: check-env $(SAM_STAMP)  ## smoke-test stack ENV (or AWS_SAM_STACK_NAME): health, a classification, the page
	$(AWS_ENV) $(SAM_VENV)/bin/python scripts/smoke.py --stack $(SMOKE_STACK)

delete: check-env $(SAM_STAMP)  ## empty the site, upload and batch results buckets, then delete stack ENV and its image repository
	$(AWS_ENV) scripts/empty_site_bucket.sh $(STACK_NAME)
	$(AWS_ENV) scripts/empty_site_bucket.sh $(STACK_NAME) UploadBucketName
	$(AWS_ENV) scripts/empty_site_bucket.sh $(STACK_NAME) BatchResultsBucketName
	$(SAM) delete --config-env $(ENV) $(REGION_FLAG) --no-prompts

batch: check-env $(STAMP)  ## classify every image under URL=s3://bucket/prefix/ on stack ENV (OUTPUT=file.jsonl|csv)
	@test -n "$(URL)" || { echo "usage: make batch URL=s3://bucket/prefix/ [OUTPUT=results.csv] [ENV=dev]"; exit 2; }
	AWS_SAM_STACK_NAME=$(STACK_NAME) $(AWS_ENV) $(VENV)/bin/imagerec batch "$(URL)" $(if $(OUTPUT),--output "$(OUTPUT)",--wait)
