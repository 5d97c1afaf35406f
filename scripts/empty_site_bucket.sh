#!/usr/bin/env bash
# Empty one of the stack's buckets (the site bucket unless another Output is named) so that
# `sam delete` can delete it (CloudFormation does not delete a bucket that still holds objects).
# Used by `make delete`, for the site bucket and the batch results bucket.
#   usage: scripts/empty_site_bucket.sh STACK_NAME [OUTPUT_KEY]
set -euo pipefail

stack="${1:?usage: $0 STACK_NAME [OUTPUT_KEY]}"
output="${2:-SiteBucketName}"
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

if ! bucket="$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$output'].OutputValue" --output text 2>"$errors")"; then
  if grep -q "does not exist" "$errors"; then
    echo "empty_site_bucket: stack $stack does not exist; nothing to empty"
    exit 0
  fi
  cat "$errors" >&2
  exit 1
fi
if [[ -z "$bucket" || "$bucket" == "None" ]]; then
  echo "empty_site_bucket: stack $stack has no $output output; nothing to empty"
  exit 0
fi

aws s3 rm "s3://$bucket/" --recursive --only-show-errors
echo "empty_site_bucket: emptied s3://$bucket"
