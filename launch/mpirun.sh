#!/usr/bin/env bash
# Runs `causeway run CONFIG [causeway options...]` under Open MPI's mpirun on this machine (or
# on the hosts named in MPI_ARGS).
#
# Usage:
#   launch/mpirun.sh CONFIG [causeway run options...]
#   RANKS=8 THREADS_PER_RANK=2 launch/mpirun.sh configs/ioi-gpt2-small.toml --overwrite
#   launch/mpirun.sh --help
#
# Variables a user edits (below, or set them in the environment for one run):
#   RANKS             MPI ranks (processes) to start.
#   THREADS_PER_RANK  CPU threads each rank uses; exported as OMP_NUM_THREADS and passed as
#                     `--threads` unless the causeway options already contain --threads.
#   CAUSEWAY          the causeway binary; default: build/release/causeway of this checkout.
#   MPIRUN            the launcher: Open MPI's mpirun (default: mpirun on PATH), or its path,
#                     e.g. /opt/openmpi-4.1/bin/mpirun; the options below are Open MPI's.
#   BIND              auto: bind each rank to THREADS_PER_RANK cores when they all fit on this
#                     machine's cores, else leave ranks unbound; cores: always bind; none: never
#                     (pass your own --map-by/--bind-to in MPI_ARGS then, as with a hostfile).
#   MPI_ARGS          extra mpirun arguments, split on spaces, e.g. "--hostfile hosts
#                     --report-bindings".
#   DRY_RUN           1: print the mpirun command instead of running it.
#
# All arguments are handed to `causeway run` unchanged; the wrapper's exit status is mpirun's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

RANKS="${RANKS:-2}"
THREADS_PER_RANK="${THREADS_PER_RANK:-1}"
CAUSEWAY="${CAUSEWAY:-$(cd "$here/.." && pwd)/build/release/causeway}"
BIND="${BIND:-auto}"
MPIRUN="${MPIRUN:-mpirun}"
MPI_ARGS="${MPI_ARGS:-}"
DRY_RUN="${DRY_RUN:-0}"

usage() {
  # The usage text is the comment block at the top of this file.
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

if [ $# -eq 0 ]; then
  usage >&2
  exit 2
fi
case "$1" in
  -h | --help)
    usage
    exit 0
    ;;
esac

for v in RANKS THREADS_PER_RANK; do
  if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
    echo "mpirun.sh: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done
if [ ! -x "$CAUSEWAY" ]; then
  echo "mpirun.sh: no causeway binary at $CAUSEWAY (build it, or set CAUSEWAY)" >&2
  exit 2
fi

# Open MPI counts one slot per physical core (not per hardware thread), so count cores the same
# way. Only this machine is counted: with a hostfile in MPI_ARGS, set BIND yourself.
cores="$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)"
if [ "$cores" -lt 1 ]; then
  cores="$(nproc)"
fi

args=(-np "$RANKS")
# Open MPI refuses to start as root unless told that it is intended (containers, CI).
if [ "$(id -u)" -eq 0 ]; then
  args+=(--allow-run-as-root)
fi
# More ranks than slots is refused by default; allow it (slow, but useful for tests).
if [ "$RANKS" -gt "$cores" ]; then
  args+=(--oversubscribe)
fi
case "$BIND" in
  auto)
    if [ $((RANKS * THREADS_PER_RANK)) -le "$cores" ]; then
      args+=(--map-by "slot:PE=$THREADS_PER_RANK" --bind-to core)
    else
      # Binding would put several ranks on one core and fail; let the kernel spread them.
      args+=(--map-by slot --bind-to none)
    fi
    ;;
  cores) args+=(--map-by "slot:PE=$THREADS_PER_RANK" --bind-to core) ;;
  none) ;;
  *)
    echo "mpirun.sh: BIND must be auto, cores or none, got '$BIND'" >&2
    exit 2
    ;;
esac

export OMP_NUM_THREADS="$THREADS_PER_RANK"
# mpirun forwards only named variables to ranks on other hosts.
args+=(-x OMP_NUM_THREADS)

if [ -n "$MPI_ARGS" ]; then
  read -r -a extra <<<"$MPI_ARGS"
  args+=("${extra[@]}")
fi

# A config's [model] threads would otherwise override the launcher's choice; causeway rejects a
# second --threads, so only add it when the user gave none.
threads_opt=(--threads "$THREADS_PER_RANK")
for a in "$@"; do
  case "$a" in
    --threads | --threads=*) threads_opt=() ;;
  esac
done

cmd=("$MPIRUN" "${args[@]}" "$CAUSEWAY" run "$@" "${threads_opt[@]}")
if [ "$DRY_RUN" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi
exec "${cmd[@]}"
