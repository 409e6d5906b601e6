# Faster R-CNN R-18 on "shapes-textured": the shapes classes on images of other statistics
# (multi-scale colour-noise backgrounds and objects, up to 16 distractors, objects of 10..96 px),
# a held-out target task of the backbone-only distillation flow (configs/distill/README.md).
# Same model, schedule and seed as faster-rcnn_r18_fpn_shapes.py.
#
#   python tools/dataset_converters/make_shapes.py --out data/shapes-textured --num-train 400 \
#       --num-val 100 --size 256 --seed 2 --textured --max-distractors 16 --min-size 10 --max-size 96
_base_ = './faster-rcnn_r18_fpn_shapes.py'

data_root = 'data/shapes-textured/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
