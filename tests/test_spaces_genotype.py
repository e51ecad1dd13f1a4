import json

import pytest
import torch

from mimdarts.errors import GenotypeError
from mimdarts.spaces import GENOTYPES, Genotype, derive_cell, derive_genotype, load_genotype
from mimdarts.spaces.candidates import DARTS_PRIMITIVES as OPS

K = {name: i for i, name in enumerate(OPS)}


def weights(entries, steps=2, base=0.01):
    """[E, 8] weights, all ``base`` except {(edge, op): value}."""
    n_edges = sum(2 + i for i in range(steps))
    w = torch.full((n_edges, len(OPS)), base)
    for (e, op), v in entries.items():
        w[e, K[op]] = v
    return w


# steps=2 -> edges: node0 = {0: c_{k-2}, 1: c_{k-1}}, node1 = {2: from 0, 3: from 1, 4: from node0}
CASES = {
    "top-2 edges, strongest first": (
        {(0, "sep_conv_3x3"): 0.3, (1, "max_pool_3x3"): 0.5,
         (2, "skip_connect"): 0.2, (3, "dil_conv_3x3"): 0.1, (4, "sep_conv_5x5"): 0.9},
        (("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2), ("skip_connect", 0))),
    "a strong none is ignored for the edge and for the op": (
        {(0, "none"): 0.99, (0, "avg_pool_3x3"): 0.02, (1, "sep_conv_3x3"): 0.4,
         (2, "none"): 0.9, (3, "none"): 0.9, (4, "none"): 0.9,
         (2, "dil_conv_5x5"): 0.05, (3, "skip_connect"): 0.06, (4, "max_pool_3x3"): 0.04},
        (("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 0))),
    "ties go to the lower edge and the lower op index": (
        {},  # all weights equal
        (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1))),
    "tie between two ops of one edge": (
        {(0, "sep_conv_5x5"): 0.5, (0, "sep_conv_3x3"): 0.5, (1, "skip_connect"): 0.4,
         (2, "dil_conv_3x3"): 0.3, (4, "dil_conv_3x3"): 0.3},
        (("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 0), ("dil_conv_3x3", 2))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_derive_cell(case):
    entries, expected = CASES[case]
    assert derive_cell(weights(entries), OPS, steps=2) == expected


def test_reduction_cell_is_derived_independently():
    normal = weights({(0, "sep_conv_3x3"): 0.5, (1, "sep_conv_3x3"): 0.4,
                      (2, "sep_conv_3x3"): 0.5, (3, "sep_conv_3x3"): 0.4})
    reduce = weights({(0, "max_pool_3x3"): 0.5, (1, "avg_pool_3x3"): 0.4,
                      (4, "skip_connect"): 0.5, (3, "max_pool_3x3"): 0.4})
    g = derive_genotype(normal, reduce, steps=2)
    assert g.normal == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
                        ("sep_conv_3x3", 1))
    assert g.reduce == (("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 2),
                        ("max_pool_3x3", 1))
    assert g.normal_concat == g.reduce_concat == (2, 3)
    assert g.summary() == {"n_skip_normal": 0, "n_skip_reduce": 1}


def test_derive_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \[14, 8\]"):
        derive_cell(torch.zeros(5, 8), OPS, steps=4)


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2"])
def test_published_genotypes_round_trip(name):
    g = GENOTYPES[name]
    assert Genotype.parse(str(g)) == g
    assert Genotype.from_json(g.to_json()) == g
    assert load_genotype(name) == g
    assert load_genotype(str(g)) == g


def test_darts_v2_is_the_published_cell():
    g = GENOTYPES["DARTS_V2"]
    assert g.normal[-1] == ("dil_conv_3x3", 2)
    assert g.count("skip_connect") == 2
    assert g.reduce_concat == (2, 3, 4, 5)


def test_parse_text_from_other_codebases():
    text = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 3))")
    with pytest.raises(GenotypeError, match="not a literal"):
        Genotype.parse(text)
    g = Genotype.parse(text.replace("range(2, 3)", "[2]"))
    assert g.steps == 1


def test_files_and_run_folders(tmp_path):
    g = GENOTYPES["DARTS_V1"]
    (tmp_path / "g.json").write_text(g.to_json())
    (tmp_path / "g.txt").write_text(str(g))
    run = tmp_path / "run"
    run.mkdir()
    (run / "genotype.json").write_text(json.dumps(g.to_dict()))
    for spec in (tmp_path / "g.json", tmp_path / "g.txt", run):
        assert load_genotype(str(spec)) == g


BAD = {
    "Genotype(normal=[('conv_9x9', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])": "unknown op 'conv_9x9'",
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 5)], normal_concat=[2], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])": "has input 5",
    "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])": "2 edges per node",
    "Genotype(normal=[('none', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])": "'none' cannot",
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[7], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])": "normal_concat",
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]": "malformed genotype",
    "Genotype(normal=[], normal_concat=[2])": "missing field",
    "__import__('os').system('echo hi')": "not a known name",
    '{"space": "nb201", "normal": []}': "for the 'nb201' space",
    '{"normal": [["sep_conv_3x3", 0]]': "JSON is malformed",
    "NOT_A_GENOTYPE": "not a known name",
}


@pytest.mark.parametrize("text", list(BAD))
def test_bad_genotypes_are_clear_errors(text):
    with pytest.raises(GenotypeError, match=BAD[text]) as e:
        load_genotype(text)
    assert "\n" not in str(e.value)


def test_parse_never_runs_code():
    with pytest.raises(GenotypeError, match="must look like Genotype"):
        Genotype.parse("__import__('os').system('echo hi')")
    with pytest.raises(GenotypeError, match="not a literal"):
        Genotype.parse("Genotype(normal=__import__('os').getcwd(), normal_concat=[2], "
                       "reduce=[], reduce_concat=[2])")
