"""Reading image files: bit depth, formats, alpha, natural order and the messages of bad
input, the same in the Python API (ssimref.load_images) and the command line.

Files are written by other libraries (Pillow, tifffile) or, for 16-bit colour PNG, which
Pillow cannot write, straight from the PNG specification (zlib and CRC-32), and read back
exactly."""

import json
import struct
import zlib

import numpy as np
import pytest

import ssimref
from ssimref import cli

Image = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_png16(path, pixels, extra=b""):
    """A 16-bit PNG by the specification: colour type 0 (grey), 2 (RGB), 4 (grey + alpha)
    or 6 (RGBA) from the channel count, filter 0 on every row, big-endian samples;
    ``extra``: chunks placed before the image data."""
    pixels = np.asarray(pixels, dtype=np.uint16)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, c = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + pixels[i].astype(">u2").tobytes() for i in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                     + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def folder_of(tmp_path, name, images, write):
    folder = tmp_path / name
    folder.mkdir()
    for i, img in enumerate(images):
        write(folder / f"{i:02d}", img)
    return folder


def test_16_bit_grayscale_png_keeps_16_bits_and_infers_range_65535(tmp_path, rng, capsys):
    X = rng.integers(0, 65536, (3, 9, 10), dtype=np.uint16)
    X[0, 0, 0], X[1, 0, 0] = 65535, 1  # values no 8-bit file can hold
    folder = folder_of(tmp_path, "g16", X,
                       lambda p, img: Image.fromarray(img).save(p.with_suffix(".png")))
    data = ssimref.load_images(folder)
    assert data.images.dtype == np.uint16
    np.testing.assert_array_equal(data.images, X)
    code, _, err = run(capsys, "distance", folder, "-o", tmp_path / "D.npy", "--size", "3")
    assert code == 0, err
    assert json.loads((tmp_path / "D.json").read_text())["config"]["data_range"] == 65535
    np.testing.assert_array_equal(np.load(tmp_path / "D.npy"),
                                  ssimref.distance_matrix(X, size=3, data_range=65535))


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_keeps_16_bits(tmp_path, rng, channels):
    """Pillow opens a 16-bit RGB(A) PNG as 8-bit (the high bytes); ssimref keeps all 16."""
    X = rng.integers(0, 65536, (2, 5, 6, channels), dtype=np.uint16)
    X[..., 3:] = 65535  # an opaque alpha, if any
    folder = folder_of(tmp_path, "c16", X, lambda p, img: write_png16(p.with_suffix(".png"),
                                                                      img))
    with Image.open(folder / "00.png") as im:  # what Pillow alone would give
        assert np.asarray(im).dtype == np.uint8
    data = ssimref.load_images(folder, color=True)
    assert data.images.dtype == np.uint16
    np.testing.assert_array_equal(data.images, X[..., :3])


def test_16_bit_colour_png_with_sbit_and_a_transparent_colour(tmp_path, rng):
    """An sBIT chunk (12 significant bits) does not change the stored samples, and a tRNS
    colour key makes the pixels of that colour transparent."""
    X = rng.integers(0, 65536, (1, 4, 5, 3), dtype=np.uint16)
    X[0, 1, 2] = (1, 2, 3)
    extra = chunk(b"sBIT", bytes([12, 12, 12])) + chunk(b"tRNS", struct.pack(">HHH", 1, 2, 3))
    folder = folder_of(tmp_path, "key", X, lambda p, img: write_png16(p.with_suffix(".png"),
                                                                      img, extra))
    with pytest.raises(ValueError, match="transparent pixels"):
        ssimref.load_images(folder, color=True)
    kept = ssimref.load_images(folder, color=True, alpha="keep").images
    np.testing.assert_array_equal(kept[..., :3], X)
    expected_alpha = np.full((1, 4, 5), 65535)
    expected_alpha[0, 1, 2] = 0
    np.testing.assert_array_equal(kept[..., 3], expected_alpha)


def test_16_bit_grayscale_png_with_a_transparent_grey(tmp_path, rng):
    X = rng.integers(0, 65536, (1, 4, 5), dtype=np.uint16)
    X[0, 3, 1] = 7
    folder = folder_of(tmp_path, "key", X, lambda p, img: write_png16(
        p.with_suffix(".png"), img, chunk(b"tRNS", struct.pack(">H", 7))))
    with pytest.raises(ValueError, match="transparent pixels"):
        ssimref.load_images(folder)
    kept = ssimref.load_images(folder, alpha="keep").images
    np.testing.assert_array_equal(kept[..., 0], X)
    assert kept.dtype == np.uint16 and np.argwhere(kept[..., 1] == 0).tolist() == [[0, 3, 1]]


def test_16_bit_colour_png_without_pypng_is_refused_naming_the_file(tmp_path, rng, capsys,
                                                                   monkeypatch):
    folder = folder_of(tmp_path, "c16", rng.integers(0, 65536, (2, 5, 6, 3)),
                       lambda p, img: write_png16(p.with_suffix(".png"), img))
    monkeypatch.setitem(__import__("sys").modules, "png", None)
    with pytest.raises(ImportError, match=r"00\.png is a 16-bit colour PNG.*images\]"):
        ssimref.load_images(folder, color=True)
    code, _, err = run(capsys, "distance", folder, "--color", "-o", tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1 and "00.png" in err
    assert not (tmp_path / "D.npy").exists()


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_16_bit_rgb_tiff_and_grayscale_tiff(tmp_path, rng, planar):
    X = rng.integers(0, 65536, (2, 7, 5, 3), dtype=np.uint16)
    write = (lambda p, img: tifffile.imwrite(p.with_suffix(".tif"), img, photometric="rgb")
             ) if planar == "contig" else (
        lambda p, img: tifffile.imwrite(p.with_suffix(".tiff"), np.moveaxis(img, 2, 0),
                                        photometric="rgb", planarconfig="separate"))
    folder = folder_of(tmp_path, "rgb", X, write)
    data = ssimref.load_images(folder, color=True)
    assert data.images.dtype == np.uint16
    np.testing.assert_array_equal(data.images, X)
    G = X[..., 0]
    folder = folder_of(tmp_path, "gray", G, lambda p, img: tifffile.imwrite(
        p.with_suffix(".TIF"), img, photometric="minisblack"))
    np.testing.assert_array_equal(ssimref.load_images(folder).images, G)
    # --color repeats a grayscale value in the three channels, in 16 bits
    np.testing.assert_array_equal(ssimref.load_images(folder, color=True).images,
                                  np.repeat(G[..., None], 3, axis=-1))


def test_a_multi_page_tiff_is_refused_naming_the_file(tmp_path, rng, capsys):
    folder = tmp_path / "pages"
    folder.mkdir()
    tifffile.imwrite(folder / "stack.tif", rng.integers(0, 255, (3, 6, 6), dtype=np.uint8),
                     photometric="minisblack")
    with pytest.raises(ValueError, match=r"stack\.tif holds several images"):
        ssimref.load_images(folder)
    code, _, err = run(capsys, "distance", folder, "-o", tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1 and "stack.tif" in err


def test_bmp_folder(tmp_path, rng):
    X = rng.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    folder = folder_of(tmp_path, "bmp", X,
                       lambda p, img: Image.fromarray(img).save(p.with_suffix(".bmp")))
    np.testing.assert_array_equal(ssimref.load_images(folder, color=True).images, X)


def test_grayscale_is_pillows_luma_in_8_bits_and_the_same_weights_in_16(tmp_path, rng):
    X8 = rng.integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    folder = folder_of(tmp_path, "c8", X8,
                       lambda p, img: Image.fromarray(img).save(p.with_suffix(".png")))
    expected = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in X8])
    np.testing.assert_array_equal(ssimref.load_images(folder).images, expected)
    X16 = rng.integers(0, 65536, (2, 8, 9, 3), dtype=np.uint16)
    folder = folder_of(tmp_path, "c16", X16,
                       lambda p, img: tifffile.imwrite(p.with_suffix(".tif"), img,
                                                       photometric="rgb"))
    gray = ssimref.load_images(folder).images
    assert gray.dtype == np.uint16
    # ITU-R 601-2 in exact rational arithmetic; the fixed-point weights and the rounding
    # stay within one unit of it
    R, G, B = np.moveaxis(X16.astype(np.int64), -1, 0)
    exact = (299 * R + 587 * G + 114 * B) / 1000
    assert np.max(np.abs(gray - exact)) < 1


def rgba_folder(tmp_path, rng, transparent):
    X = rng.integers(0, 256, (3, 6, 5, 4), dtype=np.uint8)
    X[..., 3] = 255
    if transparent:
        X[1, 2, 3, 3] = 0
    return folder_of(tmp_path, "rgba", X,
                     lambda p, img: Image.fromarray(img, "RGBA").save(p.with_suffix(".png"))
                     ), X


def test_an_opaque_alpha_channel_is_dropped(tmp_path, rng):
    folder, X = rgba_folder(tmp_path, rng, transparent=False)
    np.testing.assert_array_equal(ssimref.load_images(folder, color=True).images, X[..., :3])


def test_transparent_pixels_are_refused_alike_in_python_and_the_command_line(tmp_path, rng,
                                                                            capsys):
    folder, X = rgba_folder(tmp_path, rng, transparent=True)
    with pytest.raises(ValueError, match=r"01\.png has transparent pixels.*alpha='drop'"):
        ssimref.load_images(folder, color=True)
    code, _, err = run(capsys, "distance", folder, "--color", "-o", tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1
    assert "01.png has transparent pixels" in err and "--alpha drop" in err
    assert not (tmp_path / "D.npy").exists()


@pytest.mark.parametrize("alpha", ["drop", "keep"])
def test_alpha_drop_and_keep_in_python_and_the_command_line(tmp_path, rng, alpha, capsys):
    folder, X = rgba_folder(tmp_path, rng, transparent=True)
    expected = X if alpha == "keep" else X[..., :3]
    images = ssimref.load_images(folder, color=True, alpha=alpha).images
    np.testing.assert_array_equal(images, expected)
    code, _, err = run(capsys, "distance", folder, "--color", "--alpha", alpha, "-o",
                       tmp_path / "D.npy", "--size", "3")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "D.npy"),
                                  ssimref.distance_matrix(expected, size=3))
    record = json.loads((tmp_path / "D.json").read_text())["images"]
    assert record["alpha"] == alpha and record["color"] is True


def test_alpha_keep_gives_files_without_alpha_an_opaque_one(tmp_path, rng):
    X = rng.integers(0, 256, (2, 4, 5), dtype=np.uint8)
    folder = folder_of(tmp_path, "gray", X,
                       lambda p, img: Image.fromarray(img).save(p.with_suffix(".png")))
    images = ssimref.load_images(folder, alpha="keep").images
    np.testing.assert_array_equal(images[..., 0], X)
    assert images.shape == (2, 4, 5, 2) and np.all(images[..., 1] == 255)


def test_folders_are_read_in_natural_order(tmp_path, capsys):
    """img2 before img10 (a plain sort puts img10 first); the order is in --help too."""
    folder = tmp_path / "nat"
    folder.mkdir()
    names = ["img1", "img2", "img10", "img11"]
    for value, name in enumerate(names):
        Image.fromarray(np.full((4, 4), 10 * value, dtype=np.uint8)).save(
            folder / f"{name}.png")
    images = ssimref.load_images(folder).images
    np.testing.assert_array_equal(images[:, 0, 0], [0, 10, 20, 30])
    with pytest.raises(SystemExit):
        cli.main(["distance", "--help"])
    assert "natural order, img2 before img10" in " ".join(capsys.readouterr().out.split())


def test_folder_images_of_different_bit_depths_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(folder / "b.png")
    with pytest.raises(ValueError, match=r"b\.png is 4x4 pixels, uint16 but a\.png is 4x4 "
                                         r"pixels, uint8"):
        ssimref.load_images(folder)


def test_a_file_that_is_no_image_is_refused_naming_it(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png at all")
    code, _, err = run(capsys, "distance", folder, "-o", tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1 and "broken.png" in err


@pytest.fixture
def npz_file(tmp_path, rng):
    path = tmp_path / "s.npz"
    np.savez(path, train=rng.integers(0, 256, (3, 8, 8), dtype=np.uint8),
             test=rng.integers(0, 256, (2, 8, 8), dtype=np.uint8))
    return path


def test_npz_without_a_clear_image_array_names_the_file_and_its_keys(npz_file, tmp_path,
                                                                      capsys):
    with pytest.raises(ValueError, match=r"s\.npz holds the arrays train, test and none is "
                                         r"named 'images'; choose one with --key"):
        ssimref.load_images(npz_file)
    code, _, err = run(capsys, "distance", npz_file, "-o", tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1 and "s.npz" in err and "train, test" in err
    assert not (tmp_path / "D.npy").exists()


def test_a_key_that_does_not_exist_says_so_and_lists_the_keys(npz_file, tmp_path, capsys):
    code, _, err = run(capsys, "distance", npz_file, "--key", "images", "-o",
                       tmp_path / "D.npy")
    assert code == 2 and err.count("\n") == 1
    assert "s.npz has no array named 'images' (--key); its arrays: train, test" in err
    assert not (tmp_path / "D.npy").exists()
    code, _, err = run(capsys, "distance", npz_file, "--key", "test", "-o",
                       tmp_path / "D.npy", "--size", "3")
    assert code == 0, err
    assert np.load(tmp_path / "D.npy").shape == (2, 2)


def test_a_broken_npz_or_npy_file_is_refused_naming_it(tmp_path, capsys):
    for name in ("x.npz", "x.npy"):
        (tmp_path / name).write_bytes(b"garbage")
        code, _, err = run(capsys, "distance", tmp_path / name, "-o", tmp_path / "D.npy")
        assert code == 2 and err.count("\n") == 1 and name in err


def test_a_zarr_group_key_that_does_not_exist_says_so_and_lists_the_keys(tmp_path, rng):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    group.create_array("train", data=rng.integers(0, 256, (3, 8, 8), dtype=np.uint8))
    group.create_array("test", data=rng.integers(0, 256, (2, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"s\.zarr has no array named 'images' \(--key\); "
                                         r"its arrays: test, train"):
        ssimref.load_images(tmp_path / "s.zarr", key="images")
    with pytest.raises(ValueError, match=r"s\.zarr holds the arrays test, train and none is "
                                         r"named 'images'"):
        ssimref.load_images(tmp_path / "s.zarr")
    assert ssimref.load_images(tmp_path / "s.zarr", key="test").images.shape == (2, 8, 8)


def test_alpha_does_nothing_for_arrays_and_data_sets(tmp_path):
    # --alpha chooses how image files' alpha channels are read; an array or a bundled
    # data set has none, so the option is refused (as --color and --key are)
    from ssimref import cli, load_images

    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8), np.uint8))
    for source in (str(tmp_path / "x.npy"), "digits"):
        with pytest.raises(ValueError, match="--alpha"):
            load_images(source, alpha="drop")
    assert cli.main(["distance", str(tmp_path / "x.npy"), "-o", str(tmp_path / "D.npy"),
                     "--alpha", "keep"]) == 2
    assert not (tmp_path / "D.npy").exists()


def test_a_file_without_numpys_header_is_not_called_a_pickle(tmp_path):
    # NumPy reads any file without its magic string as a pickle; ssimref says what the
    # file is not, and keeps the pickle message for real object arrays
    from ssimref import load_images

    (tmp_path / "bad.npy").write_bytes(b"this is not an array" * 10)
    with pytest.raises(ValueError, match="not a .npy file") as err:
        load_images(tmp_path / "bad.npy")
    assert "pickle" not in str(err.value)
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="a pickle"):
        load_images(tmp_path / "obj.npy")
