#!/usr/bin/env bash
# Upload site/ to the stack's private bucket with explicit content types and cache headers,
# invalidate CloudFront, and print the page's URL. Used by `make deploy` after `sam deploy`.
#   usage: scripts/deploy_site.sh STACK_NAME [SITE_DIR]
# Region and credentials come from the AWS CLI's usual sources (AWS_PROFILE, AWS_DEFAULT_REGION).
set -euo pipefail

stack="${1:?usage: $0 STACK_NAME [SITE_DIR]}"
site_dir="${2:-site}"

output() {  # the value of one stack Output, or fail loudly
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text)"
  if [[ -z "$value" || "$value" == "None" ]]; then
    echo "deploy_site: stack $stack has no output $1" >&2
    exit 1
  fi
  printf '%s\n' "$value"
}

[[ -f "$site_dir/index.html" ]] || { echo "deploy_site: $site_dir/index.html not found" >&2; exit 1; }

bucket="$(output SiteBucketName)"
distribution="$(output DistributionId)"
url="$(output SiteUrl)"
dest="s3://$bucket/"
short_cache="public, max-age=300"
quiet=(--only-show-errors)

# Assets first, so a new index.html never points at files that are not there yet.
aws s3 sync "$site_dir" "$dest" "${quiet[@]}" --exclude "*" --include "*.js" \
  --content-type "text/javascript; charset=utf-8" --cache-control "$short_cache"
aws s3 sync "$site_dir" "$dest" "${quiet[@]}" --exclude "*" --include "*.css" \
  --content-type "text/css; charset=utf-8" --cache-control "$short_cache"
# Anything else (icons, images): content type guessed from the extension.
aws s3 sync "$site_dir" "$dest" "${quiet[@]}" --exclude "*.js" --exclude "*.css" --exclude "*.html" \
  --cache-control "$short_cache"
# Pages last, never cached by browsers without revalidating.
aws s3 sync "$site_dir" "$dest" "${quiet[@]}" --exclude "*" --include "*.html" \
  --content-type "text/html; charset=utf-8" --cache-control "no-cache"
# Remove objects that are no longer in site/ (everything present was uploaded above).
aws s3 sync "$site_dir" "$dest" "${quiet[@]}" --delete

invalidation="$(aws cloudfront create-invalidation --distribution-id "$distribution" \
  --paths "/*" --query "Invalidation.Id" --output text)"
echo "deploy_site: uploaded $site_dir/ to $dest; CloudFront invalidation $invalidation in progress"
echo "imagerec is at: $url"
