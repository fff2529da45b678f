#!/usr/bin/env bash
# `causeway run` with 1, 2 and 4 ranks, static and dynamic schedule: every dataset of the
# result file equals the 1-rank file's.
source "$(dirname "$0")/common.sh"
write_config "$WORK/run.toml" ""
"$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/ranks1.h5" --quiet
for n in 2 4; do
  for schedule in static dynamic; do
    echo "$n ranks, $schedule schedule"
    "${MPIRUN[@]}" -np "$n" "$CAUSEWAY" run "$WORK/run.toml" --out "$WORK/ranks$n-$schedule.h5" \
      --schedule "$schedule" --quiet
    same_datasets "$WORK/ranks1.h5" "$WORK/ranks$n-$schedule.h5"
  done
done
echo PASS
