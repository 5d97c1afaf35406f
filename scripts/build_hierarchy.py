"""Build layers/imagerec/imagerec/data/imagenet_hierarchy.json: familiar categories for ImageNet.

ImageNet-1k's classes are WordNet 3.0 noun synsets; class i is the i-th synset id in sorted
order. For each class this walks WordNet's hypernyms up to "entity", keeps one parent per
synset (WordNet lists the primary one first; PARENT_OVERRIDES says where people think
otherwise), drops the levels people never name (ABSTRACTIONS, JARGON), names what is left with
the lemma people use most (SemCor tag counts, then NAME_OVERRIDES), and assigns each class one
broad category (CATEGORIES, checked against every hypernym path, first match wins).

Inputs, read only here, never at run time:
- WordNet 3.0 from Debian's `wordnet-base` (`apt-get install wordnet-base`):
  /usr/share/wordnet/{data.noun,cntlist.rev}.
- The ImageNet-1k synset ids from the `timm` wheel (`timm/data/_info/imagenet_synsets.txt`),
  fetched with `pip download timm==TIMM_VERSION --no-deps` into a temporary folder (or
  `--timm-wheel` for a wheel already on disk). timm is not a dependency of imagerec.
- Our labels file, to check that each label names its synset.

Run: .venv/bin/python scripts/build_hierarchy.py   (writes the JSON; prints a report)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "layers" / "imagerec" / "imagerec" / "data"
OUTPUT = DATA / "imagenet_hierarchy.json"
LABELS = DATA / "imagenet_labels.txt"
WORDNET = Path("/usr/share/wordnet")
TIMM_VERSION = "1.0.31"
SYNSETS_IN_WHEEL = "timm/data/_info/imagenet_synsets.txt"
FORMAT = 2

# Levels that say nothing to a person ("an artifact, 97%"), so they are never a parent or a
# summary. Near the root every photo scores close to 100% on them, which is exactly why.
# "organism" and "living thing" go too: "animal", "plant", "fungus", "person" say it better.
ABSTRACTIONS: dict[str, str] = {
    "00001740": "entity",
    "00001930": "physical entity",
    "00002137": "abstraction",
    "00002684": "object",
    "00003553": "whole, unit",
    "00004258": "living thing",
    "00004475": "organism",
    "00007347": "causal agent",
    "00019128": "natural object",
    "00020827": "matter",
    "00020090": "substance",
    "00021939": "artifact",
    "03575240": "instrumentality",
    "03183080": "device",
    "03122748": "covering",
    "03076708": "commodity",
    "03093574": "consumer goods",
    "03257877": "durables",
    "03100490": "conveyance",
    "03294048": "equipment",
    "03563967": "implement",
    "03738472": "mechanism",
    "03736970": "mechanical device",
    "04081844": "restraint",
    "03839993": "obstruction",
    "03297735": "establishment",
    "03953020": "place of business",
    "15046900": "solid",
    "07570720": "nutriment",
    "07566340": "foodstuff",
    "00027807": "shape, form",
    "00031264": "group",
    "00033020": "communication",
    "13086908": "plant part",
    "13087625": "plant organ",
    "11675842": "reproductive structure",
    "09287968": "geological formation",
    "03129123": "creation",
    "03748162": "mercantile establishment",
    "04341686": "structure",
    "03574816": "instrument",
    "04014297": "protective covering",
    "03405265": "furnishing",
    "00022903": "article",
    "04550840": "ware",
    "03892891": "part",
    "03932203": "piece",
    "03932670": "piece of cloth",
    "04359589": "support",
    "04263760": "source of illumination",
    "04317420": "stick",
    "00024264": "attribute",
    "13865483": "round shape",
    "13899200": "sphere",
    "09289709": "globule",
    "00019613": "substance",
    "14580897": "material",
    "04341414": "structural member",
}

# Zoological and technical ranks that are true but that people do not say of a photo.
JARGON: dict[str, str] = {
    "01466257": "chordate",
    "01471682": "vertebrate",
    "01886756": "placental",
    "01661818": "diapsid",
    "01524359": "passerine",
    "01525720": "oscine",
    "02370806": "ungulate",
    "02394477": "even-toed ungulate",
    "02399000": "ruminant",
    "02401031": "bovid",
    "02514825": "bony fish",
    "02528163": "teleost",
    "01674216": "saurian",
    "01727646": "colubrid",
    "01976146": "decapod crustacean",
    "01473806": "aquatic vertebrate",
    "01905661": "invertebrate",
    "01767661": "arthropod",
    "01317541": "domestic animal",
    "04576211": "wheeled vehicle",
    "04170037": "self-propelled vehicle",
    "03791235": "motor vehicle",
    "07555863": "food, solid food: its parent, food and nutrient, also holds drinks",
    "07705711": "produce",
    "07556970": "course",
    "04531098": "vessel",  # the container; "bottle", "pot" are what people say
    "03125870": "craft",
    "02152991": "game",
    "02153203": "game bird",
    "02274024": "lepidopterous insect",
    "01482071": "elasmobranch",
    "01480516": "cartilaginous fish",
    "01661592": "anapsid",
    "01662622": "chelonian",
    "02470899": "anthropoid ape",
    "01428580": "soft-finned fish",
    "02552171": "spiny-finned fish",
    "03154446": "cutting implement",
    "03154073": "cutter",
    "03196324": "digital computer",
    "03546340": "housing",
    "03863923": "overgarment",
    "09366317": "natural elevation",
    "01789386": "gallinaceous bird",
    "02441326": "musteline mammal",
    "01802721": "phasianid",
    "01845477": "anseriform bird",
    "01873982": "metatherian",
    "02323449": "lagomorph",
    "02323902": "leporid",
    "13083586": "vascular plant",
    "11665372": "angiosperm",
    "11552386": "spermatophyte",
    "01909422": "coelenterate",
    "02316707": "echinoderm",
    "01438208": "cypriniform fish",
    "01439121": "cyprinid",
    "01632047": "ambystomid",
    "01676755": "iguanid",
    "01687665": "agamid",
    "01745125": "elapid",
    "01825930": "coraciiform bird",
    "01838038": "piciform bird",
    "01578575": "corvine bird",
    "01871543": "prototherian",
    "01914163": "anthozoan",
    "02134971": "viverrine",
    "02171869": "scarabaeid beetle",
    "02171453": "lamellicorn beetle",
    "02206270": "hymenopterous insect",
    "02226183": "orthopterous insect",
    "02232951": "dictyopterous insect",
    "02246011": "homopterous insect",
    "02268148": "odonate",
    "02373336": "odd-toed ungulate",
    "02374149": "equine",
    "02453611": "edentate",
    "02503127": "proboscidean",
    "02507649": "procyonid",
    "02554730": "percoid fish",
    "02638596": "ganoid",
    "07809368": "flavorer",
    "03274561": "electro-acoustic transducer",
    "04470953": "transducer",
    "02817799": "beating-reed instrument",
    "03228016": "double-reed instrument",
    "03393324": "free-reed instrument",
    "03510583": "heavier-than-air craft",
    "03666917": "lighter-than-air craft",
    "04377057": "system",
    "03078287": "communication system",
    "04188643": "sheet",
    "03391770": "framework",
    "04361095": "supporting structure",
    "04296261": "staff",
    "03096960": "control",
    "04580493": "white goods",
}

# The familiar categories: what a person says of a photo when the exact class is unsure ("a
# dog", "a bird", "fruit", "a car"). They are Rosch's basic-level categories and the
# superordinates people use (bird, fish, fruit, vegetable, clothing, furniture, tool, vehicle,
# musical instrument, weapon), and only those; every other node is a parent, never an
# answer. docs/accuracy.md says how the list was checked on 882 real photos.
FAMILIAR: dict[str, str] = {
    "01482330": "shark",
    "01495701": "ray",
    "01503061": "bird",
    "01529672": "finch",
    "01557185": "thrush",
    "01604330": "bird of prey",
    "01629276": "salamander",
    "01630284": "newt",
    "01639765": "frog",
    "01662784": "turtle",
    "01663401": "sea turtle",
    "01674464": "lizard",
    "01726692": "snake",
    "01772222": "spider",
    "01795088": "grouse",
    "01816887": "parrot",
    "01846331": "duck",
    "01922303": "worm",
    "01976957": "crab",
    "01982650": "lobster",
    "02002075": "stork",
    "02008041": "heron",
    "02026059": "sandpiper",
    "02062744": "whale",
    "02084071": "dog",
    "02114100": "wolf",
    "02118333": "fox",
    "02121808": "cat",
    "02127808": "big cat",
    "02131653": "bear",
    "02159955": "insect",
    "02164464": "beetle",
    "02274259": "butterfly",
    "02324045": "rabbit",
    "02419796": "antelope",
    "02470325": "ape",
    "02484322": "monkey",
    "02496913": "lemur",
    "02503517": "elephant",
    "02512053": "fish",
    "02686568": "aircraft",
    "02773037": "bag",
    "02778669": "ball",
    "02801938": "basket",
    "02834778": "bicycle",
    "02858304": "boat",
    "02876657": "bottle",
    "02880940": "bowl",
    "02883344": "box",
    "02898711": "bridge",
    "02913152": "building",
    "02924116": "bus",
    "02933112": "cabinet",
    "02942699": "camera",
    "02954340": "cap",
    "02958343": "car",
    "02970849": "cart",
    "03001627": "chair",
    "03046257": "clock",
    "03051540": "clothing",
    "03057021": "coat",
    "03082979": "computer",
    "03151077": "curtain",
    "03327234": "fence",
    "03343853": "firearm",
    "03380867": "footwear",
    "03405725": "furniture",
    "03438257": "glass",
    "03450516": "robe",
    "03467517": "guitar",
    "03467984": "gun",
    "03489162": "hand tool",
    "03497657": "hat",
    "03513137": "helmet",
    "03544360": "house",
    "03593526": "jar",
    "03603722": "jug",
    "03623556": "knife",
    "03636248": "lamp",
    "03800933": "musical instrument",
    "03815615": "tie",
    "03862676": "oven",
    "03880531": "pan",
    "03906997": "pen",
    "03928116": "piano",
    "03990474": "pot",
    "03997484": "power tool",
    "04128499": "sailboat",
    "04143897": "scarf",
    "04161981": "seat",
    "04187547": "shed",
    "04194289": "ship",
    "04199027": "shoe",
    "04230808": "skirt",
    "04235291": "sled",
    "04370048": "sweater",
    "04371563": "bathing suit",
    "04379243": "table",
    "04401088": "telephone",
    "04451818": "tool",
    "04490091": "truck",
    "04520170": "van",
    "04524313": "vehicle",
    "04543158": "wagon",
    "04565375": "weapon",
    "07609840": "dessert",
    "07679356": "bread",
    "07695965": "sandwich",
    "07705931": "fruit",
    "07707451": "vegetable",
    "07715561": "squash",
    "07881800": "drink",
}

# Dropped levels that still make a parent when a class has nothing else above it ("altar":
# structure; "acorn": plant part): true and plain, though never an answer.
TOO_ABSTRACT_TO_LIST: frozenset[str] = frozenset(
    {
        "00001740",  # entity
        "00001930",  # physical entity
        "00002137",  # abstraction
        "00002684",  # object
        "00003553",  # whole
        "00004258",  # living thing
        "00004475",  # organism
        "00021939",  # artifact
        "03575240",  # instrumentality
        "00019128",  # natural object
        "03892891",  # part
        "03932203",  # piece
        "00024264",  # attribute
        "00027807",  # shape
        "13865483",  # round shape
    }
)

# Where WordNet's first hypernym is not the one people think of.
PARENT_OVERRIDES: dict[str, str] = {
    # solid food -> solid -> matter: fruit and vegetables then miss "food" (food, nutrient),
    # which also holds drinks and dishes.
    "07555863": "00021265",
    # ImageNet's "cup" is WordNet's punch served in a cup; its photos show the cup.
    "07930864": "03241496",
    # game bird -> game -> animal: its second hypernym keeps grouse and partridges birds.
    "02153203": "01789386",
}

# Familiar names where the most-used lemma is not the one people say of a photo.
NAME_OVERRIDES: dict[str, str] = {
    "02121808": "cat",  # house cat, domestic cat
    "07705931": "fruit",  # edible fruit: what a lemon, a fig or a banana is to a shopper
    "04530566": "watercraft",  # not "vessel", which is also the container
    "01639765": "frog",  # "frog, toad, anuran": a tree frog is not a toad
    "04014297": "protective covering",  # its most-used lemma, "protection", is not a thing
}

# Broad categories, in the spirit of Rekognition's: (name, synsets under which a class
# belongs to it). A class takes the first category that any of its hypernym paths reaches;
# a class that reaches none is "other".
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("person", ("00007846",)),
    ("animal", ("00015388",)),
    # Before "plant": a lemon or a fig in ImageNet is on a plate or a market stall.
    ("food", ("00021265", "07555863", "07881800")),
    ("plant", ("00017222", "12992868", "13134947", "11669921")),
    ("vehicle", ("04524313",)),
    ("clothing", ("03051540", "02671780", "03502509", "03380867")),
    ("music", ("03800933",)),
    ("sport", ("04285146", "03414162", "02778669")),
    ("weapon", ("04565375", "02739668")),
    (
        "electronics",
        ("03278248", "03082979", "04401088", "03277771", "03269401", "03926148"),
    ),
    ("furniture", ("03405265",)),
    ("household", ("03094503", "04381994", "03621049", "04447443", "03528263")),
    ("tool", ("04451818", "03563967")),
    ("building", ("04341686",)),
    ("landscape", ("09287968",)),
    ("other", ()),
)


@dataclass(frozen=True)
class Synset:
    offset: str
    lexfile: str
    words: tuple[tuple[str, int], ...]  # (lemma, lex_id)
    hypernyms: tuple[str, ...]  # "@" and "@i", in WordNet's order


def read_wordnet(folder: Path) -> dict[str, Synset]:
    synsets: dict[str, Synset] = {}
    with (folder / "data.noun").open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.partition(" | ")[0].split()
            count = int(fields[3], 16)
            words = tuple((fields[4 + 2 * i], int(fields[5 + 2 * i], 16)) for i in range(count))
            at = 4 + 2 * count
            hypernyms = []
            for i in range(int(fields[at])):
                symbol, target, pos, _ = fields[at + 1 + 4 * i : at + 5 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(target)
            synsets[fields[0]] = Synset(fields[0], fields[1], words, tuple(hypernyms))
    return synsets


def read_tag_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with (folder / "cntlist.rev").open(encoding="latin-1") as lines:
        for line in lines:
            key, _, count = line.split()
            counts[key] = int(count)
    return counts


def familiar_name(synset: Synset, counts: dict[str, int]) -> str:
    if synset.offset in NAME_OVERRIDES:
        return NAME_OVERRIDES[synset.offset]

    def used(word: tuple[str, int]) -> int:
        lemma, lex_id = word
        return counts.get(f"{lemma.lower()}%1:{synset.lexfile}:{lex_id:02d}::", 0)

    # The most-tagged lemma; ties keep WordNet's order (its headword first).
    best = max(synset.words, key=used)
    lemma = best[0].split("(")[0]  # "crane(a)" style markers
    return lemma.replace("_", " ")


def hypernyms(offset: str, synsets: dict[str, Synset]) -> tuple[str, ...]:
    if offset in PARENT_OVERRIDES:
        return (PARENT_OVERRIDES[offset],)
    return synsets[offset].hypernyms


def ancestors(offset: str, synsets: dict[str, Synset]) -> set[str]:
    """Every synset above this one, on every path (the overrides replace a synset's own)."""
    seen: set[str] = set()
    stack = list(hypernyms(offset, synsets))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(hypernyms(node, synsets))
    return seen


def parent_of(offset: str, synsets: dict[str, Synset]) -> str | None:
    above = hypernyms(offset, synsets)
    return above[0] if above else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def class_synsets(wheel: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(SYNSETS_IN_WHEEL)
    wnids = raw.decode("ascii").split()
    if len(wnids) != 1000 or wnids != sorted(wnids) or len(set(wnids)) != 1000:
        sys.exit(f"Expected 1000 sorted, distinct synset ids in {SYNSETS_IN_WHEEL}")
    return [w.removeprefix("n") for w in wnids], hashlib.sha256(raw).hexdigest()


def fetch_timm(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"timm=={TIMM_VERSION}",
            "--no-deps",
            "--quiet",
            "-d",
            str(folder),
        ],
        check=True,
    )
    return next(folder.glob(f"timm-{TIMM_VERSION}-*.whl"))


def check_lists(synsets: dict[str, Synset]) -> None:
    """Every hand-listed synset exists, and the names beside the dropped ones are its lemmas."""
    listed = [*PARENT_OVERRIDES, *PARENT_OVERRIDES.values(), *NAME_OVERRIDES, *FAMILIAR]
    listed += sorted(TOO_ABSTRACT_TO_LIST)
    listed += [offset for _, roots in CATEGORIES for offset in roots]
    for offset in listed:
        if offset not in synsets:
            sys.exit(f"Expected a WordNet noun synset, received: {offset}")
    for offset, name in {**ABSTRACTIONS, **JARGON}.items():
        lemmas = {w.replace("_", " ").lower() for w, _ in synsets[offset].words}
        if offset not in synsets or name.split(",")[0] not in lemmas:
            sys.exit(f"Expected {name!r} to be a lemma of {offset}, received: {sorted(lemmas)}")


def kept_chains(
    classes: list[str], synsets: dict[str, Synset], dropped: set[str], clashes: set[str]
) -> list[list[str]]:
    """Each class's single-parent path up to the root, nearest first, without dropped levels.

    A class with nothing left above it keeps the dropped levels that are still plain words
    (all but TOO_ABSTRACT_TO_LIST and the names that clash), so no class has empty parents.
    """

    def path(offset: str, skip: set[str] | frozenset[str]) -> list[str]:
        chain = []
        node = parent_of(offset, synsets)
        while node is not None:
            if node not in skip:
                chain.append(node)
            node = parent_of(node, synsets)
        return chain

    fallback = TOO_ABSTRACT_TO_LIST | clashes
    return [path(offset, dropped | clashes) or path(offset, fallback) for offset in classes]


def name_clashes(chains: list[list[str]], names: dict[str, str]) -> set[str]:
    """Nodes to drop so that no two kept nodes share a name.

    On one chain ("cat" the house cat under "cat" the true cat) the nearer one stays; across
    branches ("car" the automobile, "car" the railcar) the one with more classes under it
    keeps the name and the others are dropped, unless NAME_OVERRIDES gives them their own.
    """
    under: Counter[str] = Counter(node for chain in chains for node in chain)
    depth = {node: len(chain) - level for chain in chains for level, node in enumerate(chain)}
    by_name: dict[str, list[str]] = {}
    for node, name in names.items():
        by_name.setdefault(name, []).append(node)
    drop: set[str] = set()
    for name, nodes in sorted(by_name.items()):
        if len(nodes) < 2:
            continue
        # More classes first; on one chain the nearer (deeper) node wins the tie.
        ranked = sorted(nodes, key=lambda n: (-under[n], -depth[n], n))
        on_one_chain = any(set(nodes) <= set(chain) for chain in chains)
        keep = max(nodes, key=lambda n: depth[n]) if on_one_chain else ranked[0]
        losers = [n for n in nodes if n != keep]
        print(f"  name {name!r}: kept {keep}, dropped {losers}", file=sys.stderr)
        drop.update(losers)
    return drop


def build(wordnet: Path, wheel: Path) -> dict[str, object]:
    synsets = read_wordnet(wordnet)
    counts = read_tag_counts(wordnet)
    classes, synsets_sha = class_synsets(wheel)
    labels = LABELS.read_text("utf-8").splitlines()
    class_set = set(classes)
    check_lists(synsets)
    dropped = set(ABSTRACTIONS) | set(JARGON)

    # No class is a hypernym of another, so every category is strictly above the classes.
    for offset in classes:
        clash = ancestors(offset, synsets) & class_set
        if clash:
            sys.exit(f"class {offset} has another class above it: {sorted(clash)}")

    names: dict[str, str] = {}
    chains = kept_chains(classes, synsets, dropped, set())
    for chain in chains:
        for node in chain:
            names.setdefault(node, familiar_name(synsets[node], counts))
    same_name = name_clashes(chains, names)
    chains = kept_chains(classes, synsets, dropped, same_name)
    for chain in chains:  # the fallback may reach levels the first pass did not
        for node in chain:
            names.setdefault(node, familiar_name(synsets[node], counts))
    if not all(chains):
        empty = [c for c, chain in zip(classes, chains, strict=True) if not chain]
        sys.exit(f"classes with no parent: {empty}")

    # Nodes in parent-before-child order, so a reader can sum bottom-up in one pass.
    kept: dict[str, str | None] = {}
    depth: dict[str, int] = {}
    for chain in chains:
        for level, node in enumerate(chain):
            kept[node] = chain[level + 1] if level + 1 < len(chain) else None
            depth[node] = len(chain) - 1 - level
    order = sorted(kept, key=lambda n: (depth[n], n))
    index = {node: i for i, node in enumerate(order)}
    for offset, name in FAMILIAR.items():
        if offset not in kept or names[offset] != name:
            sys.exit(f"Expected familiar {offset} to be a kept node named {name!r}")

    category_names = [name for name, _ in CATEGORIES]
    class_rows = []
    mismatched = []
    for i, offset in enumerate(classes):
        above = ancestors(offset, synsets)
        category = next(
            k for k, (_, roots) in enumerate(CATEGORIES) if not roots or above & set(roots)
        )
        chain = chains[i]
        class_rows.append([f"n{offset}", index[chain[0]] if chain else -1, category])
        lemmas = {w.split("(")[0].replace("_", " ").lower() for w, _ in synsets[offset].words}
        if labels[i].lower() not in lemmas:
            mismatched.append((i, labels[i], sorted(lemmas)))

    return {
        "format": FORMAT,
        "about": (
            "Familiar WordNet 3.0 categories above each ImageNet-1k class, built by "
            "scripts/build_hierarchy.py. nodes: [synset id, name, parent node index or -1, "
            "1 if a familiar category (a summary may name it) else 0], parents before "
            "children. classes: [synset id, nearest node index, category index], in "
            "class-index order."
        ),
        "provenance": {
            "command": "python scripts/build_hierarchy.py",
            "wordnet": "WordNet 3.0, Debian package wordnet-base "
            + _debian_version("wordnet-base"),
            "wordnet_data_noun_sha256": sha256(wordnet / "data.noun"),
            "wordnet_cntlist_rev_sha256": sha256(wordnet / "cntlist.rev"),
            "imagenet_synsets": f"timm {TIMM_VERSION} wheel, {SYNSETS_IN_WHEEL}",
            "imagenet_synsets_sha256": synsets_sha,
            "labels_sha256": sha256(LABELS),
            "labels_not_a_lemma": [[i, label] for i, label, _ in mismatched],
        },
        "categories": category_names,
        "nodes": [
            [f"n{n}", names[n], index[p] if (p := kept[n]) else -1, int(n in FAMILIAR)]
            for n in order
        ],
        "classes": class_rows,
    }


def _debian_version(package: str) -> str:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"
    return result.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=WORDNET)
    parser.add_argument("--timm-wheel", type=Path, help="a timm wheel already on disk")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        wheel = args.timm_wheel or fetch_timm(Path(temp))
        data = build(args.wordnet, wheel)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    args.output.write_text(text + "\n", encoding="utf-8")
    provenance = data["provenance"]
    assert isinstance(provenance, dict)
    print(f"{args.output}: {len(data['nodes'])} nodes, {len(text)} bytes")  # type: ignore[arg-type]
    print(f"labels that are not a lemma of their synset: {provenance['labels_not_a_lemma']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
