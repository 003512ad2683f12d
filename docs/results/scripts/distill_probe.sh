#!/usr/bin/env bash
# Session 25's distillation probe (docs/results/README.md), whole, in one resumable command:
# the ResNet-18 teacher, then CNN1 students seeds 1 and 2 side by side (one core each), then
# the comparison whose "Val, last 10 epochs" row is the rule's criterion. Session 40's CNN2
# students are the same with another student model and its own overrides (below). Run it again after
# an interruption: every step resumes from its last.ckpt, and finished steps are not redone.
#
#   bash docs/results/scripts/distill_probe.sh OUT_DIR [DATA_ROOT [OVERRIDE ...]]
#
# OUT_DIR gets teacher/ and students/; DATA_ROOT defaults to ../shared/datasets/micro-expressions;
# further Hydra overrides go to every run (e.g. trainer.max_epochs=1 for a smoke run).
# Seed 3 (only if the students' mean reaches the rule's bar): SEEDS=3 bash ... OUT_DIR.
# STUDENT_THREADS=2 gives each student two threads (one student alone on the 2-core machine).
# STUDENT=cnn2 STUDENT_OVERRIDES="module.tta_hflip=false" SEEDS="1 2 3" trains session 40's
# CNN2 students (checkpoints on one-view val, as CNN2's undistilled headline runs).
# TEACHER_SEEDS="1 2 3" trains three ResNet-18 teachers (teacher/<n>_model=resnet18,seed=<s>)
# and the students learn their soft vote (prepared in session 41; session 48's CNN2 screen).
# EXTRA_TEACHERS="CKPT ..." adds finished runs' checkpoints (e.g. earlier students) to that vote:
# session 46's CNN2 students learn from the ResNet-18 teacher and a CNN2 student of session 45.
# STUDENT_OVERRIDES="... trainer.max_epochs=80" lengthens the students only (session 47's patient screen).
# STUDENT=resnet18 TEACHER_SEEDS="1 2 3" STUDENT_THREADS=2 SEEDS=<s>, once per seed, distils ResNet-18
# from its own recipe's three runs (session 49; seeds given together would run side by side).
set -euo pipefail
out=$(realpath -m "${1:?usage: distill_probe.sh OUT_DIR [DATA_ROOT [OVERRIDE ...]]}")
data=${2:-../shared/datasets/micro-expressions}
overrides=("${@:3}")
seeds=${SEEDS:-1 2}
student_threads=${STUDENT_THREADS:-1}
student=${STUDENT:-cnn1}
teacher_seeds=${TEACHER_SEEDS:-1}
read -r -a student_overrides <<< "${STUDENT_OVERRIDES:-}"
mkdir -p "$out"

teachers=()
for teacher_seed in $teacher_seeds; do
  teacher_run="$out/teacher/$((teacher_seed - 1))_model=resnet18,seed=$teacher_seed"
  python -m mer_lightning -m experiment=best model=resnet18 seed="$teacher_seed" data.root="$data" \
    resume=true callbacks.progress_bar=null hydra.sweep.dir="$out/teacher" \
    "hydra.sweep.subdir='$((teacher_seed - 1))_model=resnet18,seed=$teacher_seed'" "${overrides[@]}"
  teachers+=("\"$teacher_run/$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["best_checkpoint"])' "$teacher_run/metrics.json")\"")
done
for extra in ${EXTRA_TEACHERS:-}; do
  teachers+=("\"$(realpath "$extra")\"")
done
teacher_list=$(IFS=,; echo "${teachers[*]}")

pids=()
for seed in $seeds; do
  OMP_NUM_THREADS=$student_threads python -m mer_lightning -m experiment=best model="$student" seed="$seed" \
    "module.distill.teachers=[$teacher_list]" data.root="$data" resume=true \
    callbacks.progress_bar=null hydra.sweep.dir="$out/students" \
    "hydra.sweep.subdir='$((seed - 1))_model=$student,seed=$seed'" "${student_overrides[@]}" "${overrides[@]}" \
    > "$out/student$seed.log" 2>&1 &
  pids+=($!)
done
# Each student sweep's end writes students/comparison.md (the ComparisonReport Hydra callback),
# without failing on another call's unfinished seed: a per-seed loop over one OUT_DIR resumes.
for pid in "${pids[@]}"; do wait "$pid"; done
cat "$out/students/comparison.md"
