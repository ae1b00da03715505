"""Writes mrd_backend/data/imagenet_classes.txt: the 1000 ImageNet-1k class descriptions in index order, from timm's
packaged ImageNet info (the same synset lemmas as the classic class-index tables). Run: python scripts/make_imagenet_classes.py"""
from pathlib import Path

from timm.data import ImageNetInfo

info = ImageNetInfo()
out = Path(__file__).resolve().parent.parent / "mrd_backend" / "data" / "imagenet_classes.txt"
names = [info.index_to_description(i) for i in range(info.num_classes())]
assert len(names) == 1000 and all("\n" not in n for n in names)
out.write_text("\n".join(names) + "\n", encoding="utf-8")
print(f"wrote {len(names)} names to {out}")
