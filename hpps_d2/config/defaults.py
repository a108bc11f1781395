"""
``add_hpps_config(cfg)``: every key this project adds to detectron2's config.

Each key has a comment with its meaning, the paper's symbol where there is one, and where the paper
("Divide and Conquer: Hybrid Pre-training for Person Search", AAAI 2024) is silent, the reference
its default comes from (docs/anchors.md, table b) or "ours" when no reference exists.
"""
from detectron2.config import CfgNode as CN

__all__ = ["add_hpps_config"]


def add_hpps_config(cfg: CN) -> CN:
    """Add the ``HPPS`` subtree to a detectron2 config, in place; returns ``cfg``."""
    _C = cfg

    # ---------------------------------------------------------------------------------------- #
    # The person-search model (NAE, Chen et al. CVPR 2020, in the C4 layout)
    # ---------------------------------------------------------------------------------------- #
    # An anchor or RoI not matched to a person, with at least this share of its area inside an
    # ignore region (crowd, far group), is left out of the RPN/RoI sampling. Ours, following the
    # ignore-region rule of pedestrian benchmarks (IoA >= 0.5, e.g. the ECP kit).
    _C.MODEL.IGNORE_IOA_THRESH = 0.5
    # Which per-RoI trunk follows the RoI pooling: "Res5Trunk" (ResNet res5, as NAE/SeqNet/OIM) or
    # "ShuffleNetV2Trunk" (stage4 + conv5), see hpps_d2/modeling/roi_heads/box_trunk.py.
    _C.MODEL.ROI_BOX_HEAD.TRUNK = "Res5Trunk"

    _C.MODEL.NAE = CN()
    # D, dimension of the norm-aware embedding (NAE/SeqNet: 256 = 128 from res4 + 128 from res5).
    _C.MODEL.NAE.EMBEDDING_DIM = 256
    # How RoI maps are pooled into the vectors f4 (RoI-aligned map) and f5 (trunk output) that feed
    # the embedding and the box regressor: "max" (NAE/SeqNet's adaptive max pooling) or "avg".
    _C.MODEL.NAE.POOL = "max"
    # Weight of the person/background binary cross-entropy on the rescaled norm (NAE: 1.0).
    _C.MODEL.NAE.CLS_LOSS_WEIGHT = 1.0
    # Class-weighted similarity at evaluation: gallery embeddings are multiplied by their detection
    # score (NAE's inference; docs/datasets.md section 12). Queries never are.
    _C.MODEL.NAE.CWS = True

    _C.MODEL.OIM = CN()
    # L, rows of the OIM lookup table. 0 = count the identities of DATASETS.TRAIN when training
    # starts (labeled + pseudo for hybrid pre-training); never hard-code a dataset's id count.
    _C.MODEL.OIM.NUM_IDENTITIES = 0
    # Q, size of the circular queue of unlabeled persons (OIM/NAE on CUHK-SYSU: 5000; SeqNet on
    # PRW: 500).
    _C.MODEL.OIM.QUEUE_SIZE = 5000
    # Momentum m of the lookup-table update (OIM: 0.5).
    _C.MODEL.OIM.MOMENTUM = 0.5
    # Logit scale, 1 / temperature (NAE/SeqNet ports: 30; original OIM Caffe: 10).
    _C.MODEL.OIM.SCALE = 30.0
    # Weight of L_oim in L_reid (NAE: 1.0).
    _C.MODEL.OIM.LOSS_WEIGHT = 1.0
    # Split the lookup table by rows across the processes of the job (hpps_d2/modeling/oim_sharded.py,
    # after Partial FC, insightface arcface_torch/partial_fc_v2.py): each holds ~L / W rows, the
    # softmax normaliser is all-reduced, losses and gradients equal the replicated table's.
    # False (ours): one process or a table that fits replicated, the references' behaviour
    # (NAE4PS, SeqNet); turn it on when L x D x 4 bytes per process is too much (about 600k rows
    # at the paper's scale: 586 MiB per process; full LUPerson 4M+ rows). Checkpoints always hold
    # the whole table, so a run saved on W processes resumes on any W'.
    _C.MODEL.OIM.SHARDED = False
    # Table rows per block of the sharded loss's log-sum-exp (activation memory ~ N x CHUNK_ROWS;
    # ours: 65,536 rows x 512 RoIs of float32 = 128 MiB).
    _C.MODEL.OIM.CHUNK_ROWS = 65536
    # dtype of the sharded table's stored rows: "float32" (default), "float16" or "bfloat16" (half
    # the memory; logits and updates are computed in float32). Ours.
    _C.MODEL.OIM.TABLE_DTYPE = "float32"
    # Negative sampling of the sharded loss (Partial FC, partial_fc_v2.py sample() L80-97): each
    # training forward's softmax normaliser covers the batch's positives plus random other rows,
    # this fraction of each shard. 1.0 = every row (exact OIM, the default). Needs SHARDED.
    _C.MODEL.OIM.SAMPLE_RATE = 1.0

    _C.MODEL.SHUFFLENET = CN()
    # Width multiplier of torchvision's ShuffleNetV2: 0.5, 1.0, 1.5 or 2.0.
    _C.MODEL.SHUFFLENET.WIDTH = 1.0
    # Backbone outputs; the C4 layout uses "stage3" (stride 16).
    _C.MODEL.SHUFFLENET.OUT_FEATURES = ["stage3"]
    # Normalisation: "BN", "FrozenBN" or "SyncBN" (from scratch, not FrozenBN).
    _C.MODEL.SHUFFLENET.NORM = "BN"

    # Generic (ImageNet-style) pre-training of a backbone by classification, the stand-in for the
    # paper's ImageNet initialisation (MODEL.META_ARCHITECTURE "ImageClassifier").
    _C.MODEL.CLASSIFIER = CN()
    # torchvision architecture built as torchvision.models.<ARCH>(num_classes=K), exported with
    # its own key names (tools/export_classifier.py): "resnet18", "resnet50", "shufflenet_v2_x0_5"
    # (any name of hpps_d2.checkpoint RESNET_ARCHS / SHUFFLENET_ARCHS).
    _C.MODEL.CLASSIFIER.ARCH = "resnet18"
    # Classes K; 0 counts them from the training records (1 + the largest class_id).
    _C.MODEL.CLASSIFIER.NUM_CLASSES = 0
    # Classification data augmentation (torchvision references/classification/presets.py L6-22,
    # L49-60 and train.py's ImageNet defaults: crop 224, eval resize 256 then centre crop 224).
    _C.INPUT.CLASSIFICATION = CN()
    # RandomResizedCrop output side in training (torchvision: 224; the stand-in's images are
    # 96-128 px, so its configs use 96).
    _C.INPUT.CLASSIFICATION.TRAIN_CROP_SIZE = 224
    # Area fraction and aspect-ratio range of RandomResizedCrop (torchvision transforms defaults
    # (0.08, 1.0) and (3/4, 4/3)).
    _C.INPUT.CLASSIFICATION.CROP_SCALE = (0.08, 1.0)
    _C.INPUT.CLASSIFICATION.CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
    # Horizontal flip probability in training (torchvision presets: 0.5).
    _C.INPUT.CLASSIFICATION.HFLIP_PROB = 0.5
    # Evaluation: resize the shorter side to RESIZE_SIZE, then centre-crop CROP_SIZE
    # (torchvision: 256 and 224).
    _C.INPUT.CLASSIFICATION.TEST_RESIZE_SIZE = 256
    _C.INPUT.CLASSIFICATION.TEST_CROP_SIZE = 224
    # Images per evaluation batch (inference only; does not change the results).
    _C.INPUT.CLASSIFICATION.TEST_BATCH_SIZE = 32
    # Fraction of each training dataset's images used (paper Fig. 5: 20%..100% of the target
    # data). The subset is deterministic and nested: the first round(f * N) images of one fixed
    # permutation (seed 0) of the image ids, so 20% is inside 40%, and so on.
    _C.DATASETS.TRAIN_FRACTION = 1.0

    # ---------------------------------------------------------------------------------------- #
    # Person-search evaluation (docs/datasets.md section 9)
    # ---------------------------------------------------------------------------------------- #
    _C.TEST.PERSON_SEARCH = CN()
    # Gallery detections with a score below this are not searched (psdb/SeqNet/COAT: 0.5).
    _C.TEST.PERSON_SEARCH.DET_THRESH = 0.5
    # Score threshold of the detection AP/recall (SeqNet: 0.01). Set
    # MODEL.ROI_HEADS.SCORE_THRESH_TEST at or below it for comparable detection numbers.
    _C.TEST.PERSON_SEARCH.DET_EVAL_THRESH = 0.01
    # CUHK-SYSU gallery sizes to report (-1 = full set); empty = every TestG<k>.mat present plus
    # the full set, all in one evaluation.
    _C.TEST.PERSON_SEARCH.GALLERY_SIZES = []
    # CUHK-SYSU gallery size of the unsuffixed metrics (the standard protocol: 100).
    _C.TEST.PERSON_SEARCH.DEFAULT_GALLERY_SIZE = 100
    # PRW gallery modes to report: True = every other test frame (the standard protocol);
    # False = other cameras only (the multi-view variant; keys suffixed "_cross_cam").
    _C.TEST.PERSON_SEARCH.PRW_IGNORE_CAM_ID = [True, False]
    # Query feature: "box" (embedding of the query's ground-truth box, NAE/SeqNet) or "best_det"
    # (the detection in the query image with the highest IoU to it, psd2's PoseTrack21 variant).
    _C.TEST.PERSON_SEARCH.QUERY_FEATURE = "box"

    _C.HPPS = CN()

    # ---------------------------------------------------------------------------------------- #
    # Training data stream
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.DATA = CN()
    # Relative sampling weight of each dataset of DATASETS.TRAIN, in that order; empty = weights
    # proportional to dataset size, i.e. every image equally likely, which is how we read the
    # paper's "randomly sample images x^D and x^R from detection and re-ID datasets". Ours.
    _C.HPPS.DATA.SOURCE_RATIOS = ()

    # ---------------------------------------------------------------------------------------- #
    # Data unification (paper, "Data unification"; Fig. 3b)
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.UNIFY = CN()
    # How a re-ID crop becomes a scene: "expand_resize" (the paper's choice: crop on a canvas whose
    # height is a random ratio r of the crop's, then resized to the canvas size, so the person is
    # 1/r of the canvas tall) or "random_paste" (crop pasted at its own size at a random place on a
    # canvas of the canvas size). Paper Tab. 4 compares them (hpps_d2/data/canvas.py).
    _C.HPPS.UNIFY.REID_CANVAS = "expand_resize"
    # (height, width) of the canvas in pixels; () = the model-input size: the size detectron2's
    # ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN) gives a frame of aspect
    # CANVAS_ASPECT, drawn per canvas (900 x 1200 for configs/pretrain.yaml, 256 x 341 at 256 px).
    # Either way the canvas IS the model input of its views: they are not resized again and their
    # crop keeps the person's whole box (HPPS.VIEWS), so canvas pixels are model-input pixels. The
    # paper gives no size ("resize to a fixed size"); ours: follow the input size so that the
    # person scale at the model input is what EXPAND_RATIO says for any INPUT.MIN_SIZE_TRAIN.
    _C.HPPS.UNIFY.CANVAS_SIZE = ()
    # Width / height of the canvas when CANVAS_SIZE is (). Ours: a 4:3 landscape frame like the
    # search scenes (the aspect of the earlier fixed 480 x 640 canvas).
    _C.HPPS.UNIFY.CANVAS_ASPECT = 4.0 / 3.0
    # expand_resize: range [r_min, r_max] of the ratio canvas height / crop height (before the
    # resize), drawn uniformly per sample: the person is H / r tall at the model input (H the canvas
    # height), i.e. 120-320 px at the 900 px input of configs/pretrain.yaml and 2/15 to 16/45 of
    # the input's shorter side at any input size (34-91 px at 256 px). The crop keeps its aspect
    # ratio. Paper silent; ours (no public hit for expand_resize, docs/anchors.md table b): 900/320
    # and 900/120, our estimate of the bulk of PRW/CUHK-SYSU person heights after the 900 px test
    # resize (not measured on the real data).
    _C.HPPS.UNIFY.EXPAND_RATIO = (2.8125, 7.5)
    # Canvas background: "pixel_mean" (MODEL.PIXEL_MEAN, given in INPUT.FORMAT channel order, RGB in
    # the shipped configs, i.e. zero after normalisation) or "black". Paper silent; ours.
    _C.HPPS.UNIFY.CANVAS_FILL = "pixel_mean"

    # ---------------------------------------------------------------------------------------- #
    # The two augmented views Aug_1(x), Aug_2(x) of every image (paper, "Self-supervised learning")
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.VIEWS = CN()
    # Number of views per image; the paper uses 2 (SimSiam pair). 1 turns the pair off.
    _C.HPPS.VIEWS.NUM = 2
    # Random crop of each view, applied with CROP_PROB; each side keeps a fraction drawn uniformly
    # from [CROP_MIN_SIZE, 1] of the image's (h, w) (detectron2 RandomCrop "relative_range").
    # SimSiam uses RandomResizedCrop(scale 0.2-1) on object-centric images (docs/anchors.md
    # table b); on scenes we keep most of the frame so that persons survive. Ours. A scene's crop
    # is then resized to the input size (INPUT.MIN_SIZE_TRAIN); a re-ID canvas's crop is placed to
    # keep the person's whole box and not resized (the canvas is already at input scale,
    # HPPS.UNIFY.CANVAS_SIZE; detectron2 v0.6 detection_utils.py L534-561 constrains a crop by
    # one instance's centre, ours by the whole box). Ours.
    _C.HPPS.VIEWS.CROP_PROB = 0.5
    _C.HPPS.VIEWS.CROP_MIN_SIZE = (0.6, 0.6)
    # A person box cut by the view's crop keeps its label only if at least this fraction of its
    # area stays inside; otherwise it becomes an ignore region in that view. Ours.
    _C.HPPS.VIEWS.MIN_VISIBLE = 0.5
    # Horizontal flip probability (SimSiam: 0.5).
    _C.HPPS.VIEWS.HFLIP_PROB = 0.5
    # Colour jitter (brightness, contrast, saturation, hue) applied with probability
    # COLOR_JITTER_PROB. SimSiam: (0.4, 0.4, 0.4, 0.1) with p = 0.8 (docs/anchors.md table b).
    _C.HPPS.VIEWS.COLOR_JITTER = (0.4, 0.4, 0.4, 0.1)
    _C.HPPS.VIEWS.COLOR_JITTER_PROB = 0.8
    # Random grayscale probability. SimSiam: 0.2.
    _C.HPPS.VIEWS.GRAYSCALE_PROB = 0.2
    # Gaussian blur with sigma drawn from BLUR_SIGMA (in pixels of the view), probability
    # BLUR_PROB. SimSiam: sigma in [0.1, 2.0], p = 0.5.
    _C.HPPS.VIEWS.BLUR_PROB = 0.5
    _C.HPPS.VIEWS.BLUR_SIGMA = (0.1, 2.0)
    # ---------------------------------------------------------------------------------------- #
    # Losses of hybrid pre-training: L = L_ps + eta * L_con + lambda * L_adv (paper Eq. 1)
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.LOSS = CN()
    # eta, weight of the self-supervised consistency loss L_con. Paper silent; ours: 1.0 (the
    # SimSiam loss is bounded in [-1, 1], like the other terms in scale).
    _C.HPPS.LOSS.ETA = 1.0
    # lambda, weight of the adversarial alignment loss L_adv. Paper silent; DA-Faster weighs its
    # image/instance domain losses 1.0 (docs/anchors.md table b).
    _C.HPPS.LOSS.LAMBDA = 1.0

    _C.HPPS.FINETUNE = CN()
    # What MODEL.WEIGHTS initialises when training starts (not on --resume): "whole" = backbone,
    # RPN and RoI head of a pre-trained model; "backbone" = backbone and RoI trunk only. The paper
    # (Fig. 5) finds "whole" better; pre-training-only modules and OIM tables are never loaded.
    _C.HPPS.FINETUNE.INIT = "whole"
    # Training augmentation of fine-tuning: "flip" (horizontal flip with p = 0.5 and the
    # INPUT.MIN_SIZE_TRAIN resize, as NAE/SeqNet) or "views" (the pre-training view augmentation
    # of HPPS.VIEWS: crop, colour jitter, grayscale, blur). Colour changes alter what identifies a
    # person, so "views" is for experiments only.
    _C.HPPS.FINETUNE.AUGMENT = "flip"

    _C.HPPS.SSL = CN()
    # Switch for L_con (Eq. 5-6).
    _C.HPPS.SSL.ENABLED = True
    # Hidden size of the prediction MLP, D -> H -> D. SimSiam uses a 4x bottleneck
    # (2048 -> 512 -> 2048); ours: 256 / 4 = 64.
    _C.HPPS.SSL.PRED_HIDDEN_DIM = 64
    # Normalisation inside the prediction MLP: "BN" (SimSiam) or "" (none). Its statistics are those
    # of the matched persons of the whole global batch, gathered from every process (SimSiam trains
    # with SyncBN over the global batch: facebookresearch/simsiam main_simsiam.py L150-152), so a
    # process with one matched person still contributes to L_con.
    _C.HPPS.SSL.PRED_NORM = "BN"

    _C.HPPS.IAM = CN()
    # Switches of the detection IAM, the re-ID IAM (Eq. 7) and the inter-task alignment module
    # (paper Tab. 5: it hurts, so off by default). An IAM needs >= 2 datasets of its task.
    _C.HPPS.IAM.DET_ENABLED = True
    _C.HPPS.IAM.REID_ENABLED = True
    _C.HPPS.IAM.INTER_ENABLED = False
    # Gradient reversal weight. Paper silent; DA-Faster: 0.1 (docs/anchors.md table b). L_d.img and
    # L_d.ins see the features through the reversal (-GRL_WEIGHT); L_d.cst through a second pass of
    # both heads at +GRL_WEIGHT, so heads and features both lower it (DA-Faster
    # maskrcnn_benchmark/modeling/da_heads/da_heads.py L92-95, L122-130).
    _C.HPPS.IAM.GRL_WEIGHT = 0.1
    # Output channels of the cascaded 1x1 convolutions before Img_head (DA-Faster: one, 512).
    _C.HPPS.IAM.CONV_DIMS = (512,)
    # FC layers before Ins_head (DA-Faster: 1024, 1024) and their dropout (DA-Faster: 0.5).
    _C.HPPS.IAM.FC_DIMS = (1024, 1024)
    _C.HPPS.IAM.DROPOUT = 0.5
    # Weights of L_d.img, L_d.ins, L_d.cst inside L_adv (DA-Faster: 1.0, 1.0, 0.1).
    _C.HPPS.IAM.IMG_WEIGHT = 1.0
    _C.HPPS.IAM.INS_WEIGHT = 1.0
    _C.HPPS.IAM.CST_WEIGHT = 0.1
    return cfg
