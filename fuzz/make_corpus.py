#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_json, fuzz_idx and fuzz_csv under
fuzz/corpus/ (fuzz_model's seeds come from gen_seeds.c). Deterministic:
running it again rewrites the same bytes. Each seed starts with the
harness's control bytes (see the harness's top comment)."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_json: byte 0 even = a whole header, odd = an architecture document.
model_dir = os.path.join(CORPUS, "model")
for name in sorted(os.listdir(model_dir)):
    with open(os.path.join(model_dir, name), "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = blob[8 : 8 + n]
    stem = name.split(".")[0]
    write("json", stem + ".header", b"\x00" + header)
    arch = json.loads(header)["__metadata__"]["architecture"]
    write("json", stem + ".arch", b"\x01" + arch.encode())
    # the header of a file without tensors, so the architecture is parsed too
    meta = json.loads(header)["__metadata__"]
    write("json", stem + ".meta_only", b"\x00" + json.dumps({"__metadata__": meta}).encode())
write("json", "escapes.header", b'\x00{"__metadata__":{"format":"nabla","x":"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t"},'
      b'"t":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}')
write("json", "numbers.arch", b'\x01{"class_name":"Sequential","seed":18446744073709551615,"input_shape":[1,2],'
      b'"layers":[{"class_name":"Dropout","config":{"rate":-0.0e-5,"name":"d"}},'
      b'{"class_name":"Activation","trainable":false,"config":{"activation":"elu","alpha":"NaN"}}]}')


# fuzz_idx: flags, split (u16 LE), parameter, then images and labels.
def idx_images(n, rows, cols):
    return struct.pack(">IIII", 0x803, n, rows, cols) + bytes((i * 37) % 256 for i in range(n * rows * cols))


def idx_labels(n, classes):
    return struct.pack(">II", 0x801, n) + bytes(i % classes for i in range(n))


def idx_seed(flags, images, labels, param=0):
    return bytes([flags]) + struct.pack("<H", len(images)) + bytes([param]) + images + labels


img, lab = idx_images(3, 2, 2), idx_labels(3, 3)
write("idx", "plain", idx_seed(0x00, img, lab))
write("idx", "gz_images", idx_seed(0x21, img, lab))
write("idx", "gz_labels", idx_seed(0x22, img, lab))
write("idx", "gz_both_two_members", idx_seed(0x33, img, lab))
write("idx", "gz_cut_trailer", idx_seed(0x25, img, lab, 3))
write("idx", "gz_flipped_crc", idx_seed(0x29, img, lab, 5))
write("idx", "gz_trailing_garbage", idx_seed(0x2E, img, lab, 2))
write("idx", "larger", idx_seed(0x00, idx_images(10, 4, 3), idx_labels(10, 10)))
# gzip written by the fuzzer's own bytes (mtime 0 keeps it deterministic)
write("idx", "raw_gzip_images", idx_seed(0x00, gzip.compress(img, mtime=0), lab))

# fuzz_csv: byte 0 = label column (bits 0-2, minus 4) and skip_header (bit 3).
LAST, FIRST = 3, 4  # -1 and 0
write("csv", "label_last", bytes([LAST]) + b"0.5,1,2\n-1e-3,2.5,0\n3,4,1\n")
write("csv", "label_first_header", bytes([FIRST | 8]) + b"label,a,b\n1,0.25,7\n0,  1.5\t,-2\n")
write("csv", "crlf_spaces", bytes([FIRST + 1]) + b" 1 , 2 ,3\r\n4,5,6\r\n\r\n")
write("csv", "regression", bytes([LAST]) + b"0.1,0.2,0.75\n0.3,0.4,-1.5\n")
write("csv", "exponents", bytes([LAST - 1]) + b"1e10,2E-5,3\n+4,-.5,6.\n")
write("csv", "bom_header", bytes([LAST | 8]) + b"\xef\xbb\xbfa,b,label\n1,2,0\n3,4,1\n")
