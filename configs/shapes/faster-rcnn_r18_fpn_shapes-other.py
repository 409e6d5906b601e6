# Faster R-CNN R-18 on "shapes-other": a *different task* on the same kind of images (another
# seed and a disjoint class set: pentagon, hexagon, cross, rhombus, arrow). It plays the part
# of an ImageNet model for the backbone-only distillation flow on shapes (configs/distill/
# README.md): its backbone is the vanilla pretrained ResNet a user already has. Same model,
# schedule and seed as faster-rcnn_r18_fpn_shapes.py.
#
#   python tools/dataset_converters/make_shapes.py --out data/shapes-other --num-train 400 \
#       --num-val 100 --size 256 --seed 1 --classes pentagon hexagon cross rhombus arrow
_base_ = './faster-rcnn_r18_fpn_shapes.py'

data_root = 'data/shapes-other/'
metainfo = dict(classes=('pentagon', 'hexagon', 'cross', 'rhombus', 'arrow'),
                palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0),
                         (145, 30, 180)])
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
