"""Re-create the bundled datasets from a scikit-learn wheel (run once; the output is committed).

    pip download --no-deps --only-binary=:all: scikit-learn==1.9.1 -d /tmp/skl
    cd /tmp/skl && unzip -q scikit_learn-*.whl 'sklearn/datasets/data/*'
    python training-job/tools/vendor_datasets.py /tmp/skl/sklearn/datasets/data

Each output is a gzipped CSV with a header row; the target is the last column.
"""
import csv
import gzip
import io
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "modelops_training" / "datasets"
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
BREAST_CANCER_MEASURES = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
                          "concave_points", "symmetry", "fractal_dimension"]


def write_csv(name: str, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    # mtime=0 keeps the bytes reproducible.
    (OUT / f"{name}.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0))


def main(src: Path) -> None:
    features = [line.split() for line in gzip.open(src / "diabetes_data_raw.csv.gz", "rt") if line.strip()]
    targets = [line.split()[0] for line in gzip.open(src / "diabetes_target.csv.gz", "rt") if line.strip()]
    write_csv("diabetes", DIABETES_FEATURES + ["progression"], [f + [t] for f, t in zip(features, targets)])

    digits = [line.strip().split(",") for line in gzip.open(src / "digits.csv.gz", "rt") if line.strip()]
    write_csv("digits", [f"pixel_{r}_{c}" for r in range(8) for c in range(8)] + ["digit"], digits)

    with open(src / "breast_cancer.csv") as f:
        rows = list(csv.reader(f))[1:]  # the first row is sklearn's "569,30,malignant,benign" shape line
    header = [f"{kind}_{m}" for kind in ("mean", "error", "worst") for m in BREAST_CANCER_MEASURES]
    write_csv("breast_cancer", header + ["malignant_0_benign_1"], rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
