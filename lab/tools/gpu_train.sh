#!/bin/bash
# Four `splitinf train` runs side by side on one lent GPU, each bounded by --max-minutes M (default 7);
# checkpoints and logs go to $OUT. Carry the folder made by `lab/tools/pack_training_data.py .gpu` and run, from
# the repository root on that machine:   M=7 bash lab/tools/gpu_train.sh
# Four runs share an 80 GB H100 at --cache 5000 (about 8 GB each); at 14,000 crops they ran out of memory.
# This is the script that made the GPU checkpoints of 2026-11-26 (see lab/RESULTS.md); edit the runs below.
set -u
PACK=${PACK:-$PWD/.gpu}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$PACK"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site SPLITINF_HOME=$PACK/home SPLITINF_DATA=$PACK/data OMP_NUM_THREADS=4 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"
M=${M:-7}
common="--loss detect --beta 0.01 --target-kb 2.7 --batch 64 --steps 200000 --cache 5000 --mosaic 0.5 --max-minutes $M"
# -P: import the installed wheel, not the checkout's ./splitinf (whose sub-packages live elsewhere in the tree)
train() { name=$1; shift; python3 -P -c "import sys; from splitinf.cli import main; sys.exit(main(sys.argv[1:]))" \
  train "$@" $common --out "$OUT/$name.pt" --log "$OUT/$name.log.jsonl" > "/tmp/$name.out" 2> "/tmp/$name.err"
  echo "$name rc=$?"; }
train t12ft --init lab/checkpoints/person_s16_c32_b001_dm.pt --lr 4e-4 --seed 2 &
train t7ft --init lab/checkpoints/person_s16t7_c32_b0012_dm.pt --lr 4e-4 --seed 2 &
train t7new --tap 7 --restore 13 --channels 32 --width 96 --stride 1 --lr 1.5e-3 --seed 3 &
train t12w128 --tap 12 --restore 13 --channels 32 --width 128 --stride 1 --lr 1.5e-3 --seed 3 &
(sleep 120; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) &
wait %1 %2 %3 %4
for n in t12ft t7ft t7new t12w128; do
  echo "== $n"; tr '\r' '\n' < "/tmp/$n.err" | grep -v "^train: \|teacher cache:" | tail -n 12
  tr '\r' '\n' < "/tmp/$n.err" | grep "^train: " | tail -n 1
done
ls -la "$OUT"
