#!/usr/bin/env bash
# The exact `advtopo train` commands behind the shipped zoo (src/advtopo/models/pretrained/).
# Run from the repo root after `make setup`: bash tools/zoo_recipes.sh [OUT_ROOT] [NAME ...]
# Each run resumes after an interruption; tools/build_zoo.py then evaluates and packs them.
# The shipped models were trained on the project's 2-core CPU, two of these runs at a time
# (OMP_NUM_THREADS=1 each) beside other work; FGSM-AT with random init (Wong et al. 2020)
# because PGD-AT costs about 5x more per epoch there.
set -euo pipefail
OUT=${1:-zoo-build}; shift || true
ONLY=("$@")
A=".venv/bin/advtopo train --model lenet5 --batch-size 128 --optimizer adam --lr 1e-3 --schedule cosine --seed 0 --eval-subset 1000 --keep-epochs --quiet"
declare -A R
R[mnist-lenet5-std]="--dataset mnist --method standard --eps 0 --epochs 3"
R[mnist-lenet5-fgsm0.3]="--dataset mnist --method fgsm --eps 0.3 --epochs 12 --eps-warmup-epochs 3"
R[mnist-lenet5-fgsm0.1]="--dataset mnist --method fgsm --eps 0.1 --epochs 4 --eps-warmup-epochs 1"
R[mnist-lenet5-fgsm0.2]="--dataset mnist --method fgsm --eps 0.2 --epochs 5 --eps-warmup-epochs 1"
R[mnist-lenet5-pgd0.3]="--dataset mnist --method pgd --eps 0.3 --steps 10 --epochs 14 --eps-warmup-epochs 2 --eval-subset 500 --eval-steps 20"
R[fashion-lenet5-std]="--dataset fashion-mnist --method standard --eps 0 --epochs 2"
R[fashion-lenet5-fgsm0.05]="--dataset fashion-mnist --method fgsm --eps 0.05 --epochs 3 --eps-warmup-epochs 1"
R[fashion-lenet5-fgsm0.1]="--dataset fashion-mnist --method fgsm --eps 0.1 --epochs 3 --eps-warmup-epochs 1"
R[fashion-lenet5-fgsm0.2]="--dataset fashion-mnist --method fgsm --eps 0.2 --epochs 3 --eps-warmup-epochs 1"
ORDER=(mnist-lenet5-std mnist-lenet5-pgd0.3 mnist-lenet5-fgsm0.3 mnist-lenet5-fgsm0.1 mnist-lenet5-fgsm0.2 fashion-lenet5-std fashion-lenet5-fgsm0.1 fashion-lenet5-fgsm0.05 fashion-lenet5-fgsm0.2)
for name in "${ORDER[@]}"; do
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " =~ " $name " ]]; then continue; fi
  echo "== $name: $A ${R[$name]} --out $OUT/$name"
  start=$(date +%s)
  $A ${R[$name]} --out "$OUT/$name"
  echo "== $name done in $(( $(date +%s) - start )) s"
done
