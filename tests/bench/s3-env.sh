# Sourced by run.sh and many.sh: the environment under which impact, rclone and aws-cli reach the federation's
# RGW with the same keys, with no configuration file of the user's (everything below WORK).
#   bench_s3_env WORK BUCKET REGION     (FED_S3_URL, FED_S3_ACCESS_KEY, FED_S3_SECRET_KEY from federation.env)
bench_s3_env() {
  local work="$1" bucket="$2" region="$3"
  export AWS_ACCESS_KEY_ID="$FED_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$FED_S3_SECRET_KEY" AWS_DEFAULT_REGION="$region"
  export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
  : > "$AWS_CONFIG_FILE"; : > "$AWS_SHARED_CREDENTIALS_FILE"
  # rclone: an S3 remote "fed" from the environment only (no config file).
  unset AWS_CA_BUNDLE  # rclone cannot combine it with its own HTTP transport (LoadCustomCABundleError)
  export RCLONE_CONFIG="$work/rclone.conf" RCLONE_CONFIG_FED_TYPE=s3 RCLONE_CONFIG_FED_PROVIDER=Ceph \
    RCLONE_CONFIG_FED_ACCESS_KEY_ID="$FED_S3_ACCESS_KEY" RCLONE_CONFIG_FED_SECRET_ACCESS_KEY="$FED_S3_SECRET_KEY" \
    RCLONE_CONFIG_FED_ENDPOINT="$FED_S3_URL" RCLONE_CONFIG_FED_REGION="$region" RCLONE_CONFIG_FED_FORCE_PATH_STYLE=true
  : > "$RCLONE_CONFIG"
  # impact: a profile whose storage is the federation's RGW; keys from AWS_* above.
  export XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache" XDG_STATE_HOME="$work/state"
  mkdir -p "$XDG_CONFIG_HOME/impact"
  printf 'default_profile = "bench"\n[profiles.bench.storage]\nurl = "%s"\nbucket = "%s"\nregion = "%s"\n' \
    "$FED_S3_URL" "$bucket" "$region" > "$XDG_CONFIG_HOME/impact/config.toml"
}
