#!/usr/bin/env bash
# Single-node Ceph RGW on loopback for the local federation, in the foreground.
#
#   s3/start.sh --port P --state DIR [--mon-port M] [--sts-port S] [--no-sts]
#
# Starts (all state under DIR/ceph/, always fresh): one ceph-mon on 127.0.0.1:M (default P+1069,
# or env FED_S3_MON_PORT), one ceph-osd (bluestore on a sparse file), radosgw on 127.0.0.1:P with SigV4
# signature checking, creates the user with static keys (FED_S3_ACCESS_KEY / FED_S3_SECRET_KEY, or the fixed
# test keys), the buckets `results` and `drs-data` (FED_RESULTS_BUCKET / FED_DATA_BUCKET), writes
# DIR/s3.json, then starts the STS front (s3/sts.js) on 127.0.0.1:S (default P+1) unless --no-sts.
# Prints "S3 READY" once everything answers, and keeps running until SIGTERM/SIGINT, when it stops
# every daemon it started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="" STATE="" MON_PORT="${FED_S3_MON_PORT:-}" STS_PORT="" STS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --state) STATE="$2"; shift 2 ;;
    --mon-port) MON_PORT="$2"; shift 2 ;;
    --sts-port) STS_PORT="$2"; shift 2 ;;
    --no-sts) STS=0; shift ;;
    *) echo "start.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$PORT" ] && [ -n "$STATE" ] || { echo "usage: start.sh --port P --state DIR [--mon-port M] [--sts-port S] [--no-sts]" >&2; exit 2; }
if [ -z "$MON_PORT" ]; then
  # P+1069: with federations on base ports 100 apart (S3 at B+30) this lands on B'+99, which no service
  # uses; if it is taken anyway, try the next few ports
  MON_PORT=$((PORT + 1069))
  for _ in $(seq 1 20); do
    (exec 3<>"/dev/tcp/127.0.0.1/$MON_PORT") 2>/dev/null || break
    MON_PORT=$((MON_PORT + 1))
  done
fi
STS_PORT="${STS_PORT:-$((PORT + 1))}"
ACCESS_KEY="${FED_S3_ACCESS_KEY:-FEDTESTACCESSKEY0001}"
SECRET_KEY="${FED_S3_SECRET_KEY:-fedTestSecretKey0001fedTestSecretKey0001}"
REGION="${FED_S3_REGION:-us-east-1}"
BUCKETS="${FED_RESULTS_BUCKET:-results} ${FED_DATA_BUCKET:-drs-data}"
for b in radosgw ceph-mon ceph-osd ceph monmaptool radosgw-admin; do
  command -v "$b" >/dev/null || { echo "start.sh: $b not installed (run s3/install.sh)" >&2; exit 3; }
done

for p in "$PORT" "$MON_PORT" $([ "$STS" = 1 ] && echo "$STS_PORT"); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "start.sh: port 127.0.0.1:$p is already in use (another federation running? try ./down or --base-port)" >&2; exit 1
  fi
done

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
C="$STATE/ceph"
T0=$(date +%s.%N)
log() { echo "[s3 $(date +%H:%M:%S)] $*"; }

PIDS=()
# stop_pids TENTHS PID...: TERM, then KILL whatever is left after TENTHS/10 s (the state is disposable;
# radosgw sometimes sits out its own 120 s shutdown alarm)
stop_pids() {
  local p alive tenths=$1; shift
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 "$tenths"); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$@" 2>/dev/null || true   # reap them, so no zombie is left to init
}
cleanup() {
  trap - TERM INT EXIT
  # everything but the monitor first (the OSD wants to tell the monitor it is going), then the monitor
  if [ ${#PIDS[@]} -gt 1 ]; then stop_pids 30 "${PIDS[@]:1}"; fi
  if [ ${#PIDS[@]} -gt 0 ]; then stop_pids 50 "${PIDS[0]}"; fi
  log "stopped"
}
trap 'cleanup; exit 0' TERM INT
trap cleanup EXIT

# --- fresh state -----------------------------------------------------------------------------
rm -rf "$C"
mkdir -p "$C"/{mon,osd/ceph-0,rgw,run,log,tmp}
FSID="$(cat /proc/sys/kernel/random/uuid)"
OSD_UUID="$(cat /proc/sys/kernel/random/uuid)"
CONF="$C/ceph.conf"
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon_initial_members = a
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
public_network = 127.0.0.0/8
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $C/keyring
run_dir = $C/run
admin_socket = $C/run/\$cluster-\$name.asok
pid_file = $C/run/\$name.pid
log_file = $C/log/\$name.log
log_to_stderr = false
err_to_stderr = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_data_avail_crit = 1
mon_data_avail_warn = 2
# faster map updates on a single node (default 1 s per proposal)
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_osd_report_timeout = 900
[mon]
mon_data = $C/mon/\$cluster-\$id
[osd]
osd_data = $C/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_path = $C/osd/block
bluestore_block_create = true
bluestore_block_size = 17179869184
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_memory_target = 268435456
osd_memory_base = 134217728
osd_memory_cache_min = 33554432
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
osd_crush_update_on_start = true
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
# radosgw defaults this to 'secure', which auth none cannot provide
ms_mon_client_mode = crc
rgw_data = $C/rgw
rgw_thread_pool_size = 32
rgw_enable_usage_log = false
rgw_enable_ops_log = false
# RGW's own STS stays off: with it on, a wrong secret is answered AccessDenied instead of
# SignatureDoesNotMatch, and its web-identity flow needs JWTs with x5c keys (see README)
rgw_s3_auth_use_sts = false
rgw_enable_apis = s3, admin
rgw_max_listing_results = 1000
EOF
export CEPH_CONF="$CONF"
: > "$C/keyring"

log "mon on 127.0.0.1:$MON_PORT, rgw on 127.0.0.1:$PORT, state $C"
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$C/tmp/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$C/tmp/monmap" >/dev/null
ceph-mon -f -i a & PIDS+=($!)

log "mon started"
ceph --connect-timeout 20 osd new "$OSD_UUID" >/dev/null   # -> osd.0
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>"$C/log/osd-mkfs.err"
log "osd mkfs done"
ceph-osd -f -i 0 & PIDS+=($!)

radosgw -f -n client.rgw.a & PIDS+=($!)
log "daemons started (pids ${PIDS[*]}), waiting for RGW"

# --- wait for RGW (bounded), then user, buckets, s3.json --------------------------------------
alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null || { echo "start.sh: daemon $p died; see $C/log/" >&2; return 1; }; done; }
deadline=$(( $(date +%s) + ${FED_S3_START_TIMEOUT:-120} ))
until curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"; do
  alive "${PIDS[@]}" || exit 1
  [ "$(date +%s)" -lt "$deadline" ] || { echo "start.sh: RGW did not answer on 127.0.0.1:$PORT in time; see $C/log/" >&2; exit 1; }
  sleep 0.3
done
radosgw-admin user create --uid=fed --display-name="Federation test user" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
FED_S3_URL="http://127.0.0.1:$PORT" FED_S3_ACCESS_KEY="$ACCESS_KEY" FED_S3_SECRET_KEY="$SECRET_KEY" FED_S3_REGION="$REGION" \
  node -e '
    const s3 = require(process.argv[1]).createClient();
    (async () => { for (const b of process.argv.slice(2)) await s3.createBucket(b); })()
      .catch((e) => { console.error("start.sh: creating buckets failed:", e.message); process.exit(1); });
  ' "$HERE/../lib/s3.js" $BUCKETS

STS_URL=""
if [ "$STS" = 1 ] && [ -z "${FED_ISSUER:-}" ]; then
  log "FED_ISSUER not set: not starting the STS front"
elif [ "$STS" = 1 ]; then
  STS_URL="http://127.0.0.1:$STS_PORT"
  FED_STATE="${FED_STATE:-$STATE}" node "$HERE/sts.js" --port "$STS_PORT" --uid fed --ceph-conf "$CONF" \
    --issuer "$FED_ISSUER" ${FED_STS_MIN_DURATION:+--min-duration "$FED_STS_MIN_DURATION"} & PIDS+=($!)
  until curl -s -o /dev/null -m 2 "$STS_URL/service-info"; do
    alive "${PIDS[@]}" || exit 1
    [ "$(date +%s)" -lt "$deadline" ] || { echo "start.sh: STS did not answer on $STS_URL in time" >&2; exit 1; }
    sleep 0.2
  done
fi

umask 077
cat > "$STATE/s3.json" <<EOF
{
  "url": "http://127.0.0.1:$PORT",
  "sts_url": "$STS_URL",
  "region": "$REGION",
  "access_key": "$ACCESS_KEY",
  "secret_key": "$SECRET_KEY",
  "buckets": [$(printf '"%s",' $BUCKETS | sed 's/,$//')],
  "mon": "127.0.0.1:$MON_PORT",
  "ceph_conf": "$CONF",
  "pids": [$(IFS=,; echo "${PIDS[*]}")]
}
EOF
umask 022
log "S3 READY in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: http://127.0.0.1:$PORT ${STS_URL:+sts $STS_URL} (keys in $STATE/s3.json)"

# --- run until a signal, or until a daemon dies ------------------------------------------------
wait -n || true
echo "start.sh: a daemon exited; stopping the rest" >&2
exit 1
