//! Loader for Fashion-MNIST in its original gzip-compressed IDX files.
//!
//! IDX (LeCun et al., "The MNIST database", file-format section; Fashion-MNIST uses it unchanged):
//! a big-endian header `0x00 0x00 <type> <ndim>`, then `ndim` big-endian `u32` dimensions, then the
//! data. Type `0x08` is unsigned byte, so the magic is `0x00000803` for the 3-d image files
//! (`count x 28 x 28`) and `0x00000801` for the 1-d label files (`count`).
//!
//! Debian's package `dataset-fashion-mnist` installs the four files under
//! [`DEBIAN_DIR`]. Every failure is an error naming the file and what was expected;
//! nothing here panics on bad input.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::FashionShiftError;

/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Side of a Fashion-MNIST image in pixels (Xiao, Rasul & Vollgraf, 2017).
pub(super) const SIDE: usize = 28;
/// Pixels per image.
pub(super) const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub(super) const NUM_CLASSES: usize = 10;
/// IDX magic of an unsigned-byte 3-d array (images).
const MAGIC_IMAGES: u32 = 0x0000_0803;
/// IDX magic of an unsigned-byte 1-d array (labels).
const MAGIC_LABELS: u32 = 0x0000_0801;
/// Sizes of the official splits (Fashion-MNIST README): 60,000 train, 10,000 test.
const TRAIN_LEN: usize = 60_000;
const TEST_LEN: usize = 10_000;

/// One of the two official Fashion-MNIST parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// `train-*-ubyte.gz`, 60,000 garments.
    Train,
    /// `t10k-*-ubyte.gz`, 10,000 garments.
    Test,
}

impl Part {
    /// The file-name prefix of this part.
    pub(crate) fn file_prefix(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "t10k",
        }
    }

    /// Number of garments in this part.
    pub(crate) fn num_garments(self) -> usize {
        match self {
            Part::Train => TRAIN_LEN,
            Part::Test => TEST_LEN,
        }
    }
}

/// Fashion-MNIST in memory: 28x28 grey images (0 = background, 255 = brightest garment pixel) and
/// labels 0..9, for both parts.
#[derive(Clone)]
pub struct FashionMnist {
    train_images: Vec<u8>,
    train_labels: Vec<u8>,
    test_images: Vec<u8>,
    test_labels: Vec<u8>,
}

impl std::fmt::Debug for FashionMnist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FashionMnist")
            .field("train", &self.train_labels.len())
            .field("test", &self.test_labels.len())
            .finish()
    }
}

impl FashionMnist {
    /// Loads and checks the four files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, FashionShiftError> {
        let (train_images, train_labels) = load_part(dir, Part::Train)?;
        let (test_images, test_labels) = load_part(dir, Part::Test)?;
        Ok(Self {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    /// blake3 (hex) of the decoded content — both parts' images and labels, in file order — so
    /// the same garments fingerprint the same wherever the files are and however they are
    /// compressed.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [
            &self.train_images,
            &self.train_labels,
            &self.test_images,
            &self.test_labels,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().to_hex().to_string()
    }

    /// The 28x28 grey image of garment `index` of `part` (row-major). Panics if out of range.
    pub fn image(&self, part: Part, index: usize) -> &[u8] {
        let images = match part {
            Part::Train => &self.train_images,
            Part::Test => &self.test_images,
        };
        &images[index * PIXELS..(index + 1) * PIXELS]
    }

    /// The label (0..9) of garment `index` of `part`. Panics if out of range.
    pub fn label(&self, part: Part, index: usize) -> u8 {
        match part {
            Part::Train => self.train_labels[index],
            Part::Test => self.test_labels[index],
        }
    }
}

fn load_part(dir: &Path, part: Part) -> Result<(Vec<u8>, Vec<u8>), FashionShiftError> {
    let prefix = part.file_prefix();
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let images = read_idx(
        &images_path,
        MAGIC_IMAGES,
        &[part.num_garments(), SIDE, SIDE],
    )?;
    let labels = read_idx(&labels_path, MAGIC_LABELS, &[part.num_garments()])?;
    if let Some(pos) = labels.iter().position(|&l| usize::from(l) >= NUM_CLASSES) {
        return Err(FashionShiftError::BadIdx {
            path: labels_path,
            detail: format!(
                "label {} at position {pos}, expected labels 0..=9",
                labels[pos]
            ),
        });
    }
    Ok((images, labels))
}

/// Reads a gzip IDX file of unsigned bytes, checks its magic and its dimensions against `dims`,
/// and returns the data.
pub(super) fn read_idx(
    path: &Path,
    magic: u32,
    dims: &[usize],
) -> Result<Vec<u8>, FashionShiftError> {
    let file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            FashionShiftError::MissingFile {
                path: path.to_owned(),
            }
        } else {
            FashionShiftError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let mut bytes = Vec::new();
    GzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut bytes)
        .map_err(|source| FashionShiftError::Gzip {
            path: path.to_owned(),
            source,
        })?;
    parse_idx(&bytes, magic, dims)
        .map_err(|detail| FashionShiftError::BadIdx {
            path: path.to_owned(),
            detail,
        })
        .map(|offset| bytes.split_off(offset))
}

/// Checks an uncompressed IDX buffer; returns the offset of the data.
fn parse_idx(bytes: &[u8], magic: u32, dims: &[usize]) -> Result<usize, String> {
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0)
        .ok_or_else(|| format!("file is {} bytes, too short for an IDX header", bytes.len()))?;
    if found != magic {
        return Err(format!(
            "bad IDX magic 0x{found:08x}, expected 0x{magic:08x} (unsigned bytes, {}-d)",
            dims.len()
        ));
    }
    let header = 4 * (1 + dims.len());
    let mut found_dims = Vec::with_capacity(dims.len());
    for i in 0..dims.len() {
        let d = word(1 + i).ok_or_else(|| format!("header truncated: {} bytes", bytes.len()))?;
        found_dims.push(d as usize);
    }
    if found_dims != dims {
        return Err(format!("dimensions {found_dims:?}, expected {dims:?}"));
    }
    let expected = header + dims.iter().product::<usize>();
    if bytes.len() != expected {
        return Err(format!(
            "{} bytes after decompression, expected {expected} ({header}-byte header + data)",
            bytes.len()
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    use std::path::PathBuf;

    /// A fresh scratch directory under the system temp dir (no `tempfile` crate needed),
    /// removed on drop.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("fashionshift-idx-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn missing_file_names_file_and_package() {
        let dir = scratch("missing");
        let err = FashionMnist::load(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, FashionShiftError::MissingFile { .. }),
            "{msg}"
        );
        assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
        assert!(msg.contains("dataset-fashion-mnist"), "{msg}");
    }

    #[test]
    fn truncated_gzip_is_an_error_naming_the_file() {
        let dir = scratch("truncated");
        let path = dir.join("x-labels-idx1-ubyte.gz");
        let full = gz(&idx_bytes(MAGIC_LABELS, &[1000], &[3; 1000]));
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let err = read_idx(&path, MAGIC_LABELS, &[1000]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FashionShiftError::Gzip { .. }), "{msg}");
        assert!(msg.contains("x-labels-idx1-ubyte.gz"), "{msg}");
    }

    #[test]
    fn not_gzip_is_an_error() {
        let dir = scratch("notgz");
        let path = dir.join("plain.gz");
        std::fs::write(&path, idx_bytes(MAGIC_LABELS, &[2], &[1, 2])).unwrap();
        let msg = read_idx(&path, MAGIC_LABELS, &[2]).unwrap_err().to_string();
        assert!(msg.contains("plain.gz") && msg.contains("gzip"), "{msg}");
    }

    #[test]
    fn wrong_magic_dims_and_length_are_errors() {
        let dir = scratch("magic");
        let path = dir.join("bad-images-idx3-ubyte.gz");
        // A label file where an image file is expected.
        std::fs::write(&path, gz(&idx_bytes(MAGIC_LABELS, &[2], &[1, 2]))).unwrap();
        let msg = read_idx(&path, MAGIC_IMAGES, &[2, 28, 28])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bad-images-idx3-ubyte.gz") && msg.contains("magic"),
            "{msg}"
        );
        assert!(
            msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
        // Right magic, wrong dimensions.
        std::fs::write(
            &path,
            gz(&idx_bytes(MAGIC_IMAGES, &[1, 27, 28], &[0; 27 * 28])),
        )
        .unwrap();
        let msg = read_idx(&path, MAGIC_IMAGES, &[1, 28, 28])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("dimensions [1, 27, 28], expected [1, 28, 28]"),
            "{msg}"
        );
        // Data shorter than the header says.
        std::fs::write(&path, gz(&idx_bytes(MAGIC_IMAGES, &[1, 28, 28], &[0; 100]))).unwrap();
        let msg = read_idx(&path, MAGIC_IMAGES, &[1, 28, 28])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("expected 800"), "{msg}");
        // Empty file.
        std::fs::write(&path, gz(&[])).unwrap();
        let msg = read_idx(&path, MAGIC_IMAGES, &[1, 28, 28])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("too short"), "{msg}");
    }

    #[test]
    fn reads_a_valid_file() {
        let dir = scratch("valid");
        let path = dir.join("ok.gz");
        std::fs::write(&path, gz(&idx_bytes(MAGIC_LABELS, &[3], &[7, 8, 9]))).unwrap();
        assert_eq!(read_idx(&path, MAGIC_LABELS, &[3]).unwrap(), vec![7, 8, 9]);
    }

    #[test]
    fn debian_files_load() {
        let fm = super::super::tests::fmnist();
        assert_eq!(fm.train_labels.len(), 60_000);
        assert_eq!(fm.test_images.len(), 10_000 * PIXELS);
        // Fashion-MNIST is balanced: 6,000 / 1,000 per class.
        let mut counts = [0usize; 10];
        fm.test_labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [1000; 10]);
    }
}
