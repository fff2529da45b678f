#!/usr/bin/env bash
# Slurm test: starts a one-node Slurm cluster on this machine (Debian's slurm-wlm: slurmctld +
# slurmd, auth/none, its own slurm.conf and all state in a temporary directory), submits
# launch/slurm-one-node.sbatch on the tiny model once with srun and once with mpirun as the
# launcher, and checks each job's exit state and result file against a direct run. Then it
# submits launch/slurm-requeue.sbatch and plays Slurm's warning before a time limit.
#
# Usage: slurm_one_node_test.sh CAUSEWAY_BINARY SOURCE_DIR
# Needs root (slurmd starts jobs as their user); installs slurm-wlm when it is missing.
# Exits 77 (ctest: skipped) when it cannot run here, 1 on failure. The daemons it started are
# always stopped and the temporary directory removed.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 CAUSEWAY_BINARY SOURCE_DIR" >&2
  exit 2
fi
causeway="$(realpath "$1")"
src="$(realpath "$2")"
script="$src/launch/slurm-one-node.sbatch"
data="$src/tests/data"

log() { echo "slurm_one_node_test: $*"; }
skip() {
  log "SKIPPED: $*"
  exit 77
}

if [ "$(id -u)" -ne 0 ]; then
  skip "needs root to run slurmd"
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
  ! command -v sbatch >/dev/null; then
  log "installing slurm-wlm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null
fi
for tool in slurmctld slurmd sbatch scontrol sinfo h5ls h5dump h5diff; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -x "$causeway" ] || {
  log "FAIL: no causeway binary at $causeway"
  exit 1
}

# Variables of an enclosing Slurm job (ctest run inside a job) would leak into our submissions.
while IFS= read -r v; do
  case "$v" in
    SLURM_* | SBATCH_* | SRUN_* | SALLOC_*) unset "$v" ;;
  esac
done < <(compgen -e)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/causeway-slurm-test.XXXXXX")"
ctld_pid=""
slurmd_pid=""
jobs_submitted=()
started=$SECONDS

stop_pid() {
  local pid="$1" i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ ${#jobs_submitted[@]} -gt 0 ] && [ -n "$ctld_pid" ]; then
    # Cancelled jobs end their slurmstepd, so nothing of the cluster outlives the daemons.
    scancel --quiet "${jobs_submitted[@]}" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop_pid "$slurmd_pid"
  stop_pid "$ctld_pid"
  wait 2>/dev/null || true
  rm -rf "$tmp"
  log "finished in $((SECONDS - started)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  log "FAIL: $*"
  local f
  for f in "$tmp"/log/*.log "$tmp"/log/direct.out "$tmp"/job-*.out; do
    [ -f "$f" ] || continue
    echo "----- $f (last 40 lines)"
    tail -n 40 "$f"
  done
  exit 1
}

# Free ports, so that the test cannot reach another cluster's daemons (or a parallel test's);
# below 32768, where Linux starts handing out ports for outgoing connections.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ctld_port=""
for ((i = 0; i < 50; i++)); do
  p=$((10000 + RANDOM % 20000))
  if port_free "$p" && port_free $((p + 1)); then
    ctld_port=$p
    break
  fi
done
[ -n "$ctld_port" ] || fail "no free port pair found"
slurmd_port=$((ctld_port + 1))

# slurmd -C reports this machine's CPUs, sockets, cores and memory as a slurm.conf node line;
# slurmd refuses a node whose configured hardware exceeds what it finds.
node="$(hostname -s)"
hw="$(SLURM_CONF=/dev/null slurmd -C | head -n 1)"
[[ "$hw" == NodeName=* ]] || fail "slurmd -C printed '$hw'"
hw="${hw#NodeName=* }"
hw_field() {
  local v
  v="$(sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $hw")"
  echo "${v:-1}"
}
cores=$(($(hw_field Boards) * $(hw_field SocketsPerBoard) * $(hw_field CoresPerSocket)))
tasks=2
[ "$cores" -ge 2 ] || tasks=1

mkdir -p "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/out"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=causewaytest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=10 State=UP
EOF
export SLURM_CONF="$tmp/slurm.conf"

# -D keeps them in the foreground of our background jobs, so $! is the daemon itself.
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/log/slurmctld.out" 2>&1 &
ctld_pid=$!
slurmd -D -N "$node" -f "$SLURM_CONF" >"$tmp/log/slurmd.out" 2>&1 &
slurmd_pid=$!

state=""
for ((i = 0; i < 150; i++)); do
  kill -0 "$ctld_pid" 2>/dev/null || fail "slurmctld exited"
  kill -0 "$slurmd_pid" 2>/dev/null || fail "slurmd exited"
  state="$(sinfo -h -n "$node" -o %t 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || fail "node $node is '$state', not idle, after 30 s"
log "cluster up after $((SECONDS - started)) s: node $node ($hw), ports $ctld_port/$slurmd_port"

cat >"$tmp/test.toml" <<EOF
[model]
path = "$data/tiny-gpt2"

[data]
file = "$data/tiny-gpt2-patching-pairs.jsonl"

[output]
path = "$tmp/out/direct.h5"

[[experiment]]
name = "heads"
kind = "activation"
sweep = "attn_head_out"
positions = "all"
direction = "denoising"

[[experiment]]
name = "resid"
kind = "activation"
sweep = "resid_pre"
positions = "each"
direction = "noising"
EOF
experiments=(heads resid)

# The reference: the same config in one process, without Slurm or mpirun.
"$causeway" run "$tmp/test.toml" --threads 1 -q >"$tmp/log/direct.out" 2>&1 ||
  fail "direct run failed: $(cat "$tmp/log/direct.out")"

for launcher in srun mpirun; do
  id="$(CAUSEWAY="$causeway" LAUNCHER="$launcher" sbatch --parsable \
    --job-name="causeway-$launcher" --nodes=1 --ntasks="$tasks" --cpus-per-task=1 --time=5 \
    --chdir="$tmp" --output="$tmp/job-%j.out" \
    "$script" "$tmp/test.toml" --out "$tmp/out/$launcher.h5")" ||
    fail "sbatch refused the $launcher job"
  id="${id%%;*}"
  jobs_submitted+=("$id")
  log "submitted job $id ($launcher, $tasks tasks)"
done

# Polled rather than `sbatch --wait`, which checks only every few seconds; without accounting,
# scontrol knows a finished job for MinJobAge seconds.
for id in "${jobs_submitted[@]}"; do
  info=""
  for ((i = 0; i < 300; i++)); do
    info="$(scontrol -o show job "$id" 2>/dev/null || true)"
    case "$info" in
      "" | *JobState=PENDING* | *JobState=CONFIGURING* | *JobState=RUNNING*) ;;
      *JobState=COMPLETING*) ;;
      *) break ;;
    esac
    sleep 0.2
  done
  job_state="$(grep -o 'JobState=[A-Z_]*' <<<"$info" || true)"
  exit_code="$(grep -o ' ExitCode=[0-9:]*' <<<"$info" || true)"
  log "job $id: $job_state$exit_code"
  if [ "$job_state" != JobState=COMPLETED ] || [ "$exit_code" != " ExitCode=0:0" ]; then
    fail "job $id did not complete cleanly: ${info:-no record}"
  fi
done

for launcher in srun mpirun; do
  out="$tmp/out/$launcher.h5"
  [ -f "$out" ] || fail "$launcher job wrote no $out"
  for e in "${experiments[@]}"; do
    h5ls "$out/experiments/$e/effect" >/dev/null 2>&1 || fail "$out has no /experiments/$e/effect"
    h5diff -d 1e-6 "$tmp/out/direct.h5" "$out" "/experiments/$e/effect" "/experiments/$e/effect" ||
      fail "$launcher: /experiments/$e/effect differs from the direct run"
  done
  # One MPI job of $tasks ranks, not $tasks separate single-rank runs.
  layout="$(h5dump -a /meta/rank_layout "$out" 2>/dev/null | sed -n 's/.*(0): "\(.*\)".*/\1/p')"
  [[ "$layout" == "$tasks rank"* ]] ||
    fail "$launcher: /meta/rank_layout is '$layout', expected $tasks ranks"
  log "$launcher: $out matches the direct run ($layout)"
done

# launch/slurm-requeue.sbatch: slow work items (a fault hook), then the SIGTERM that
# `--signal=B:TERM@120` sends the batch shell before a time limit; the job must stop causeway,
# requeue itself, resume on its second start and finish a file equal to the direct run's.
sed 's/^\[output\]$/[parallel]\npairs_per_item = 1\n\n[output]/' "$tmp/test.toml" >"$tmp/requeue.toml"
"$causeway" run "$tmp/requeue.toml" --out "$tmp/out/requeue-direct.h5" --threads 1 -q \
  >"$tmp/log/requeue-direct.out" 2>&1 || fail "direct run of requeue.toml failed"
id="$(CAUSEWAY="$causeway" CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=400 sbatch --parsable \
  --job-name=causeway-requeue --nodes=1 --ntasks=1 --cpus-per-task=1 --time=5 \
  --chdir="$tmp" --output="$tmp/job-requeue.out" \
  "$src/launch/slurm-requeue.sbatch" "$tmp/requeue.toml" --out "$tmp/out/requeue.h5")" ||
  fail "sbatch refused the requeue job"
id="${id%%;*}"
jobs_submitted+=("$id")
log "submitted job $id (slurm-requeue.sbatch, 24 items of >= 0.4 s)"
for ((i = 0; i < 150; i++)); do
  [[ "$(scontrol -o show job "$id" 2>/dev/null)" == *JobState=RUNNING* ]] && break
  sleep 0.2
done
sleep 3 # a few items done, most not
scancel --batch --signal=TERM "$id" || fail "scancel --batch --signal=TERM $id failed"
info=""
released=0
for ((i = 0; i < 600; i++)); do
  info="$(scontrol -o show job "$id" 2>/dev/null || true)"
  case "$info" in
    *JobState=COMPLETED* | *JobState=FAILED* | *JobState=CANCELLED* | *JobState=TIMEOUT*) break ;;
    # Slurm holds a requeued job about 2 minutes (BeginTime); let it start in 3 s. Not at
    # once: slurmd refuses a credential issued in the same second as the one it revoked at the
    # requeue ("Job credential revoked"), which fails the job instead of restarting it.
    *JobState=PENDING*Restarts=1*)
      if [ "$released" = 0 ]; then
        scontrol update JobId="$id" StartTime=now+3 || fail "cannot release requeued job $id"
        released=1
      fi
      ;;
  esac
  sleep 0.2
done
job_state="$(grep -o 'JobState=[A-Z_]*' <<<"$info" || true)"
restarts="$(grep -o 'Restarts=[0-9]*' <<<"$info" || true)"
log "job $id: $job_state $restarts"
[ "$job_state" = JobState=COMPLETED ] && [ "$restarts" = Restarts=1 ] ||
  fail "requeue job $id: expected COMPLETED after 1 restart: ${info:-no record}"
grep -q "requeueing job $id" "$tmp/job-requeue.out" ||
  fail "the requeue job's log does not say it requeued"
grep -Eq "resume: [1-9][0-9]* of 24 work items already done" "$tmp/job-requeue.out" ||
  fail "the second start did not resume the first start's work"
for e in "${experiments[@]}"; do
  h5diff -d 1e-6 "$tmp/out/requeue-direct.h5" "$tmp/out/requeue.h5" \
    "/experiments/$e/effect" "/experiments/$e/effect" ||
    fail "requeue: /experiments/$e/effect differs from the direct run"
done
grep -E "^slurm-requeue:|^causeway: " "$tmp/job-requeue.out" | sed 's/^/  /' || true
log "requeue: stopped, requeued, resumed ($(grep -Eo 'resume: [0-9]+ of 24' "$tmp/job-requeue.out")) and finished"

log "PASS"
