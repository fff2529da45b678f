# Shared by the MPI integration tests: a scratch folder, a tiny-model config, mpirun as the
# Debian packages need it here (root, more ranks than cores), and dataset comparison.
set -euo pipefail
CAUSEWAY=${1:?usage: $0 CAUSEWAY_BINARY SOURCE_DIR}
SRC=${2:?usage: $0 CAUSEWAY_BINARY SOURCE_DIR}
WORK=$(mktemp -d /tmp/causeway-mpi-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

MPIRUN=(mpiexec --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

fail() { echo "FAIL: $*" >&2; exit 1; }

# write_config FILE [extra TOML lines for the [parallel] table]
write_config() {
  cat > "$1" <<TOML
[model]
path = "$SRC/tests/data/tiny-gpt2"
threads = 1

[data]
file = "$SRC/tests/data/tiny-gpt2-patching-pairs.jsonl"

[output]
path = "$WORK/unused.h5"
cache = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern"]

[parallel]
pairs_per_item = 1
$2

[[experiment]]
name = "heads_by_pos"
sweep = "attn_head_out"
positions = "each"

[[experiment]]
name = "resid_noising"
sweep = "resid_pre"
direction = "noising"

[[experiment]]
name = "mlp_resample"
kind = "ablation"
ablation = "resample"
samples = 2
sweep = "mlp_out"
TOML
}

# Every dataset of A under /experiments and /activations (dimension-scale axes aside) equals
# B's within 1e-6, and B has no dataset A lacks.
same_datasets() {
  local a=$1 b=$2 n=0
  local list_a list_b
  list_a=$(h5ls -r "$a" | awk '$2 == "Dataset" {print $1}' | grep -E '^/(experiments|activations)/' | grep -v '/axes/' | sort)
  list_b=$(h5ls -r "$b" | awk '$2 == "Dataset" {print $1}' | grep -E '^/(experiments|activations)/' | grep -v '/axes/' | sort)
  [ "$list_a" = "$list_b" ] || fail "$b has other datasets than $a"
  for d in $list_a; do
    h5diff -d 1e-6 "$a" "$b" "$d" "$d" > /dev/null || fail "$d differs between $a and $b: $(h5diff -d 1e-6 "$a" "$b" "$d" "$d" | head -5)"
    n=$((n + 1))
  done
  [ "$n" -ge 10 ] || fail "only $n datasets compared"
  echo "  $n datasets equal within 1e-6"
}

# Number of work items marked done in FILE.
items_done() {
  local total=0 d
  for d in $(h5ls -r "$1" | awk '$2 == "Dataset" {print $1}' | grep -E '/done$'); do
    h5dump -d "$d" -y -w 0 -o "$WORK/done.txt" "$1" > /dev/null
    total=$((total + $(tr -c '01' '\n' < "$WORK/done.txt" | grep -c '^1$' || true)))
  done
  echo "$total"
}
