#!/usr/bin/env bash
# Empty the stack's buckets (the site's, and the uploads not yet expired) so that `sam delete`
# can delete them (CloudFormation does not delete a bucket that still holds objects). Used by
# `make delete`.
#   usage: scripts/empty_site_bucket.sh STACK_NAME
set -euo pipefail

stack="${1:?usage: $0 STACK_NAME}"
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

for output in SiteBucketName UploadBucketName; do
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
    continue
  fi
  aws s3 rm "s3://$bucket/" --recursive --only-show-errors
  echo "empty_site_bucket: emptied s3://$bucket"
done
