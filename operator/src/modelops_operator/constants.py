"""Names shared by every operator module: the API coordinates, label keys, annotation prefix."""
GROUP = "modelops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"

FIELD_MANAGER = "modelops-operator"
# Holds spec.replicas of a serving Deployment between the operator letting go and the HPA scaling it.
HANDOVER_MANAGER = "modelops-handover"
# kopf's own bookkeeping lives in annotations under this prefix, so status holds only documented fields.
ANNOTATION_PREFIX = GROUP
FINALIZER = f"{GROUP}/artifacts"

LABEL_MODEL = f"{GROUP}/model-deployment"
LABEL_VERSION = f"{GROUP}/model-version"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_STAGE = f"{GROUP}/stage"
# On a canary's pods and in its Deployment's selector: the stable Deployment's selector (immutable, made
# before canaries) matches them too, so only this label tells the canary's ReplicaSets apart.
LABEL_TRACK = f"{GROUP}/track"
TRACK_CANARY = "canary"
# Which resource (uid) and which spec (version hash) a child was made for: a name proves neither.
LABEL_OWNER_UID = f"{GROUP}/owner-uid"
LABEL_SPEC_HASH = f"{GROUP}/spec-hash"
LABEL_PLACEMENT_HASH = f"{GROUP}/placement-hash"   # on stage Jobs: see spec.PLACEMENT_FIELDS
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
MANAGED_BY = "modelops"

DEFAULT_TRAINING_IMAGE = "ghcr.io/modelops/modelops-training:0.1.0"
DEFAULT_SERVING_IMAGE = "ghcr.io/modelops/modelops-serving:0.1.0"
# The training image with CUDA libraries, for pods that request GPUs (the default one trains on the CPU only).
DEFAULT_TRAINING_GPU_IMAGE = "ghcr.io/modelops/modelops-training-gpu:0.1.0"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"

# Where pods see storage: pvc://<claim>/<path> is mounted at PVC_ROOT/<claim>.
PVC_ROOT = "/mnt/pvc"
CONFIG_MOUNT = "/etc/modelops"
MODELS_MOUNT = "/models"
# Where a serving pod sees its model's feedback directory (spec.monitoring), as docs/serving.md says.
FEEDBACK_MOUNT = "/var/lib/modelops/feedback"
WORKER_PORT = 2222
SERVING_PORT = 8080
SERVING_GRPC_PORT = 9000   # the Open Inference Protocol over gRPC, on the pod and the Service
HISTORY_LIMIT = 20
# How long a multi-worker training pod waits for the others to start (training.startupTimeoutSeconds).
DEFAULT_STARTUP_TIMEOUT_S = 600
