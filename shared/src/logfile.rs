//! Reading CloudTrail log objects: gzip or plain, `{"Records":[...]}`, a JSON array of records, or
//! JSON lines, streamed with bounded memory and bounded cost.
//!
//! The reader never holds more than one record (plus a read buffer) in memory: a small resumable
//! scanner finds each record's byte range in the decompressed stream and hands the slice to the
//! caller, which parses it with borrowed strings ([`crate::record::Record`]). The scanner only
//! tracks strings and braces, using `memchr` to jump between them, so it costs far less than the
//! JSON parse that follows; the parse rejects whatever the scanner let through that is not JSON.
//!
//! Costs are bounded by [`ReadLimits`]: decompressed bytes, the decompression ratio (a gzip bomb
//! fails after a few megabytes, not after gigabytes), records per file and bytes per record.
//!
//! Inflate: a gzip object whose trailer says it inflates to at most [`WHOLE_INFLATE_MAX`] (within
//! the limits) and that holds a single member is inflated in one call by libdeflate, about twice
//! as fast as streaming zlib here; everything else (large objects, several members, damage, a
//! trailer that lies) streams through flate2, which also gives the precise error.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

use crate::record::Record;

/// Bounds on what one untrusted object may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadLimits {
    /// Compressed bytes read from the source, at most.
    pub max_compressed_bytes: u64,
    /// Decompressed bytes, at most.
    pub max_decompressed_bytes: u64,
    /// Decompressed bytes per compressed byte, at most (checked once past 4 MiB decompressed).
    pub max_ratio: u64,
    /// Records per file, at most.
    pub max_records: u64,
    /// Bytes of one record, at most.
    pub max_record_bytes: usize,
    /// Distinct series one file may create; the events of further series are counted in the
    /// overflow series ([`crate::fold::overflow_series`]).
    pub max_series: usize,
}

/// Distinct series one file may create, by default ([`crate::fold::Folder::with_max_series`]). A
/// CloudTrail file covers one account and region for about five minutes: a few hundred series at
/// most. The cap bounds the fold's memory (about 1 KB per series) against a file crafted with many
/// distinct APIs or error codes.
pub const DEFAULT_MAX_SERIES_PER_FILE: usize = 10_000;

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_compressed_bytes: 256 << 20,
            max_decompressed_bytes: 2 << 30,
            max_ratio: 100,
            max_records: 5_000_000,
            max_record_bytes: 4 << 20,
            max_series: DEFAULT_MAX_SERIES_PER_FILE,
        }
    }
}

/// The layout the object turned out to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Nothing but whitespace.
    Empty,
    /// CloudTrail's `{"Records":[...]}`.
    RecordsObject,
    /// A JSON array of records.
    Array,
    /// One JSON object per line (or concatenated objects).
    Lines,
}

/// What reading an object found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadStats {
    pub shape: Option<Shape>,
    pub records: u64,
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
}

/// Why an object could not be read. Every variant is final for that object: retrying it gives the
/// same answer (I/O errors from the source excepted, which the caller classifies).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not JSON (starts with byte 0x{0:02x}); not a CloudTrail log file")]
    NotJson(u8),
    #[error("corrupt gzip stream: {0}")]
    CorruptGzip(String),
    #[error("truncated: the JSON ends inside a value after {0} bytes")]
    Truncated(u64),
    #[error("malformed JSON at byte {0}")]
    Malformed(u64),
    #[error("compressed size exceeds the limit of {0} bytes")]
    CompressedTooLarge(u64),
    #[error("decompressed size exceeds the limit of {0} bytes")]
    DecompressedTooLarge(u64),
    #[error("decompression ratio exceeds {0}:1 (a gzip bomb?)")]
    RatioTooHigh(u64),
    #[error("more than {0} records")]
    TooManyRecords(u64),
    #[error("a record exceeds {0} bytes")]
    RecordTooLarge(usize),
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// True when the object is simply not a log file (ignored), rather than a damaged one.
    pub fn is_not_a_log(&self) -> bool {
        matches!(self, ReadError::NotJson(_))
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Gzip objects that inflate to at most this many bytes are inflated whole (see the module docs).
/// CloudTrail's files are mostly far smaller; larger ones stream, so memory stays bounded.
pub const WHOLE_INFLATE_MAX: u64 = 8 << 20;

/// Memory that reading an object of `compressed` bytes may take besides the caller's copy of those
/// bytes: a copy of the compressed bytes, and the whole inflated object or the streaming buffer
/// (one read chunk and the largest record), whichever is larger.
pub fn peak_read_memory(compressed: u64, limits: &ReadLimits) -> u64 {
    compressed + peak_inflate_memory(compressed, limits)
}

/// Memory that reading an object of `compressed` bytes held in memory ([`read_parsed_bytes`])
/// takes besides those bytes: the whole inflated object or the streaming buffer, whichever is
/// larger.
pub fn peak_inflate_memory(compressed: u64, limits: &ReadLimits) -> u64 {
    let whole = WHOLE_INFLATE_MAX.min(limits.max_ratio.saturating_mul(compressed).max(RATIO_GRACE));
    let streaming = 2 * CHUNK as u64 + limits.max_record_bytes as u64;
    whole.max(streaming)
}

/// Decompressed bytes an object of `compressed` bytes may inflate to, at most.
pub fn max_inflated(compressed: u64, limits: &ReadLimits) -> u64 {
    limits
        .max_decompressed_bytes
        .min(limits.max_ratio.saturating_mul(compressed).max(RATIO_GRACE))
}
const CHUNK: usize = 256 << 10;
/// The ratio limit applies once this much has been inflated (tiny files compress very well).
const RATIO_GRACE: u64 = 4 << 20;

/// Counts the bytes that pass through, and enforces the compressed-size limit.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        if self.count.get() > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct LimitExceeded;
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("compressed size limit exceeded")
    }
}
impl std::error::Error for LimitExceeded {}

/// One element found in a log object.
// Moved once per record and never stored: boxing the record would allocate per record.
#[allow(clippy::large_enum_variant)]
pub enum Item<'a> {
    /// A record, parsed in place (borrowing the read buffer).
    Record(Record<'a>),
    /// An element that is not a record the parser accepts; skipped and counted.
    Malformed,
}

/// Reads a log object from `source` (gzip or plain) and calls `on_record` with each record's JSON
/// text, in file order. Returns what was read, or why the object is unreadable.
pub fn read_records<R, F>(
    source: R,
    limits: &ReadLimits,
    mut on_record: F,
) -> Result<ReadStats, ReadError>
where
    R: Read,
    F: FnMut(&[u8]),
{
    read_items(source, limits, false, &mut |item| {
        if let Element::Text(json) = item {
            on_record(json)
        }
    })
}

/// Reads a log object and calls `on_item` with each record parsed in place: the JSON parser finds
/// each record's end itself, so the bytes are scanned once (the scanner only handles the wrapper
/// and records the parser rejects).
pub fn read_parsed<R, F>(
    source: R,
    limits: &ReadLimits,
    mut on_item: F,
) -> Result<ReadStats, ReadError>
where
    R: Read,
    F: FnMut(Item<'_>),
{
    read_items(source, limits, true, &mut |item| on_item(item_of(item)))
}

/// An element as the caller sees it: text parsed now if the scanner did not parse it.
fn item_of(element: Element<'_>) -> Item<'_> {
    match element {
        Element::Parsed(record) => Item::Record(record),
        Element::Text(json) => match Record::parse(json) {
            Ok(record) => Item::Record(record),
            Err(_) => Item::Malformed,
        },
        Element::Rejected => Item::Malformed,
    }
}

/// What the scanner hands out internally.
#[allow(clippy::large_enum_variant)]
enum Element<'a> {
    /// A record's JSON text (JSON lines, or arrays when not parsing in place).
    Text(&'a [u8]),
    Parsed(Record<'a>),
    /// An array element the parser rejected.
    Rejected,
}

type Sink<'s> = dyn FnMut(Element<'_>) + 's;

fn read_items<R: Read>(
    source: R,
    limits: &ReadLimits,
    parse_in_place: bool,
    on_element: &mut Sink<'_>,
) -> Result<ReadStats, ReadError> {
    let compressed = Rc::new(Cell::new(0u64));
    let mut counted = CountingReader {
        inner: source,
        count: Rc::clone(&compressed),
        limit: limits.max_compressed_bytes,
    };
    let mut head = [0u8; 2];
    let mut head_len = 0;
    while head_len < 2 {
        match counted.read(&mut head[head_len..]) {
            Ok(0) => break,
            Ok(n) => head_len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(map_io(e, limits)),
        }
    }
    let prefix = io::Cursor::new(head[..head_len].to_vec());
    if head_len == 2 && head == GZIP_MAGIC {
        let mut gz = head.to_vec();
        if let Err(e) = counted.read_to_end(&mut gz) {
            return Err(map_io(e, limits));
        }
        read_gzip(&gz, limits, parse_in_place, on_element)
    } else {
        let mut plain = prefix.chain(&mut counted);
        let result = scan(&mut plain, limits, parse_in_place, on_element, &|| {
            compressed.get()
        });
        drop(plain);
        finish(result, compressed.get(), limits)
    }
}

/// Reads a gzip object held in memory: inflated whole when small enough, else streamed.
fn read_gzip(
    gz: &[u8],
    limits: &ReadLimits,
    parse_in_place: bool,
    on_element: &mut Sink<'_>,
) -> Result<ReadStats, ReadError> {
    if let Some(data) = inflate_whole(gz, limits) {
        let result = scan_whole(data, limits, parse_in_place, on_element, gz.len() as u64);
        return finish(result, gz.len() as u64, limits);
    }
    // The ratio is checked against the compressed bytes the decoder has consumed so far, so
    // a bomb stops after a few megabytes.
    let consumed = Rc::new(Cell::new(0u64));
    let mut decoder = MultiGzDecoder::new(CountingReader {
        inner: gz,
        count: Rc::clone(&consumed),
        limit: u64::MAX,
    });
    let result = scan(&mut decoder, limits, parse_in_place, on_element, &|| {
        consumed.get()
    });
    drop(decoder);
    finish(result, gz.len() as u64, limits)
}

/// [`read_parsed`] of an object already in memory (what S3 returned), without copying it: the
/// only copy of the compressed bytes is the caller's.
pub fn read_parsed_bytes<F>(
    data: &[u8],
    limits: &ReadLimits,
    mut on_item: F,
) -> Result<ReadStats, ReadError>
where
    F: FnMut(Item<'_>),
{
    if data.len() as u64 > limits.max_compressed_bytes {
        return Err(ReadError::CompressedTooLarge(limits.max_compressed_bytes));
    }
    if !data.starts_with(&GZIP_MAGIC) {
        return read_parsed(data, limits, on_item);
    }
    read_gzip(data, limits, true, &mut |item| on_item(item_of(item)))
}

/// Inflates a gzip object in one call when its trailer (the last member's size, mod 2^32) is
/// within [`WHOLE_INFLATE_MAX`] and the limits and the object holds one member. `None`: stream
/// it instead. libdeflate inflates only the first member and checks it against its own trailer,
/// so the result is the whole object only when it filled exactly the size the object's last
/// four bytes announce and no second member header appears in the compressed bytes.
fn inflate_whole(gz: &[u8], limits: &ReadLimits) -> Option<Vec<u8>> {
    const MIN_GZIP: usize = 18;
    if gz.len() < MIN_GZIP {
        return None;
    }
    let trailer: [u8; 4] = gz[gz.len() - 4..].try_into().ok()?;
    let size = u64::from(u32::from_le_bytes(trailer));
    let within_limits = size <= WHOLE_INFLATE_MAX
        && size <= limits.max_decompressed_bytes
        && (size <= RATIO_GRACE || size <= limits.max_ratio.saturating_mul(gz.len() as u64));
    if !within_limits || may_hold_another_member(gz) {
        return None;
    }
    let mut out = vec![0u8; usize::try_from(size).ok()?];
    let inflated = libdeflater::Decompressor::new()
        .gzip_decompress(gz, &mut out)
        .ok()?;
    (inflated == out.len()).then_some(out)
}

/// True when a gzip member header (magic, deflate method, reserved flag bits clear) appears after
/// the first member's header. Such bytes also occur by chance inside deflate data (about once per
/// 128 MiB); the object then merely streams.
fn may_hold_another_member(gz: &[u8]) -> bool {
    const HEADER: usize = 10;
    let rest = gz.get(HEADER..).unwrap_or_default();
    memchr::memmem::find_iter(rest, &[0x1f, 0x8b, 0x08])
        .any(|i| rest.get(i + 3).is_none_or(|flags| flags & 0xe0 == 0))
}

fn finish(
    result: Result<ReadStats, ReadError>,
    compressed: u64,
    limits: &ReadLimits,
) -> Result<ReadStats, ReadError> {
    let mut stats = result.map_err(|e| match e {
        ReadError::Io(io) => map_io(io, limits),
        other => other,
    })?;
    stats.compressed_bytes = compressed;
    Ok(stats)
}

fn map_io(error: io::Error, limits: &ReadLimits) -> ReadError {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<LimitExceeded>())
    {
        return ReadError::CompressedTooLarge(limits.max_compressed_bytes);
    }
    match error.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            ReadError::CorruptGzip(error.to_string())
        }
        _ => ReadError::Io(error),
    }
}

/// Where the scanner is in the JSON structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between top-level values.
    Top,
    /// Inside a top-level array: its elements are records.
    TopArray,
    /// At depth 1 of a top-level object, between members.
    TopObject,
    /// Inside a key string of the top-level object.
    TopKey,
    /// After a top-level key, before its value.
    TopColon,
    /// Skipping the value of a top-level member that is not `Records`.
    SkipValue,
    /// Inside the `Records` array.
    RecordsArray,
    /// Inside a record object.
    Record,
}

struct Scanner<'l> {
    limits: &'l ReadLimits,
    /// Bytes read are `buf[..filled]`; the rest is initialised room for the next read, kept so
    /// that reads need not zero it again.
    buf: Vec<u8>,
    filled: usize,
    /// Absolute offset (in the stream) of `buf[0]`.
    base: u64,
    pos: usize,
    mode: Mode,
    /// Mode to return to when a record ends.
    record_return: Mode,
    depth: u32,
    in_string: bool,
    escaped: bool,
    record_start: Option<usize>,
    object_start: Option<usize>,
    key_start: usize,
    key_is_records: bool,
    saw_records_key: bool,
    skip_depth: u32,
    skip_started: bool,
    /// Parse array elements in place with serde_json (which finds their end), rather than scan.
    parse_in_place: bool,
    /// The record being scanned was rejected by the parser: emit it as such.
    rejected: bool,
    first_byte_seen: bool,
    stats: ReadStats,
}

fn scan<R: Read>(
    reader: &mut R,
    limits: &ReadLimits,
    parse_in_place: bool,
    on_record: &mut Sink<'_>,
    compressed: &dyn Fn() -> u64,
) -> Result<ReadStats, ReadError> {
    let mut s = Scanner::new(limits, parse_in_place, Vec::with_capacity(CHUNK * 2));
    loop {
        s.compact();
        let start = s.filled;
        if s.buf.len() < start + CHUNK {
            s.buf.resize(start + CHUNK, 0);
        }
        let n = loop {
            match reader.read(&mut s.buf[start..start + CHUNK]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        if n == 0 {
            break;
        }
        s.filled += n;
        s.take_in(start, compressed(), on_record)?;
    }
    s.end()
}

/// Scans an object already inflated whole.
fn scan_whole(
    data: Vec<u8>,
    limits: &ReadLimits,
    parse_in_place: bool,
    on_record: &mut Sink<'_>,
    compressed: u64,
) -> Result<ReadStats, ReadError> {
    let mut s = Scanner::new(limits, parse_in_place, data);
    s.filled = s.buf.len();
    if s.filled > 0 {
        s.take_in(0, compressed, on_record)?;
    }
    s.end()
}

impl<'l> Scanner<'l> {
    fn new(limits: &'l ReadLimits, parse_in_place: bool, buf: Vec<u8>) -> Self {
        Scanner {
            limits,
            buf,
            filled: 0,
            base: 0,
            pos: 0,
            mode: Mode::Top,
            record_return: Mode::Top,
            depth: 0,
            in_string: false,
            escaped: false,
            record_start: None,
            object_start: None,
            key_start: 0,
            key_is_records: false,
            saw_records_key: false,
            skip_depth: 0,
            skip_started: false,
            parse_in_place,
            rejected: false,
            first_byte_seen: false,
            stats: ReadStats::default(),
        }
    }

    /// Accounts for the bytes just read into `buf[start..filled]` (limits, the first byte) and
    /// scans them.
    fn take_in(
        &mut self,
        start: usize,
        compressed: u64,
        on_record: &mut Sink<'_>,
    ) -> Result<(), ReadError> {
        let limits = self.limits;
        self.stats.decompressed_bytes += (self.filled - start) as u64;
        if self.stats.decompressed_bytes > limits.max_decompressed_bytes {
            return Err(ReadError::DecompressedTooLarge(
                limits.max_decompressed_bytes,
            ));
        }
        let inflated = self.stats.decompressed_bytes;
        if inflated > RATIO_GRACE && inflated > limits.max_ratio.saturating_mul(compressed.max(1)) {
            return Err(ReadError::RatioTooHigh(limits.max_ratio));
        }
        if !self.first_byte_seen
            && let Some(&b) = self.buf[start..self.filled]
                .iter()
                .find(|b| !is_space(**b) && **b != 0xEF && **b != 0xBB && **b != 0xBF)
        {
            self.first_byte_seen = true;
            if b != b'{' && b != b'[' {
                return Err(ReadError::NotJson(b));
            }
        }
        self.run(on_record)
    }

    /// The end of the input: anything still open is a truncation.
    fn end(mut self) -> Result<ReadStats, ReadError> {
        if self.mode != Mode::Top || self.in_string {
            return Err(ReadError::Truncated(self.stats.decompressed_bytes));
        }
        if self.stats.shape.is_none() {
            self.stats.shape = Some(Shape::Empty);
        }
        Ok(self.stats)
    }

    /// Drops consumed bytes from the front of the buffer.
    fn compact(&mut self) {
        let keep = [
            self.record_start,
            self.object_start,
            (self.mode == Mode::TopKey).then_some(self.key_start),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.pos);
        if keep == 0 {
            return;
        }
        self.buf.copy_within(keep..self.filled, 0);
        self.filled -= keep;
        self.base += keep as u64;
        self.pos -= keep;
        self.record_start = self.record_start.map(|p| p - keep);
        self.object_start = self.object_start.map(|p| p - keep);
        self.key_start = self.key_start.saturating_sub(keep);
    }

    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn count_record(&mut self) -> Result<(), ReadError> {
        self.stats.records += 1;
        if self.stats.records > self.limits.max_records {
            return Err(ReadError::TooManyRecords(self.limits.max_records));
        }
        Ok(())
    }

    fn emit(
        &mut self,
        start: usize,
        end: usize,
        on_record: &mut Sink<'_>,
    ) -> Result<(), ReadError> {
        self.count_record()?;
        if std::mem::take(&mut self.rejected) {
            on_record(Element::Rejected);
        } else {
            on_record(Element::Text(&self.buf[start..end]));
        }
        Ok(())
    }

    /// Parses the record starting at `pos` in place. `Ok(true)`: done, `pos` is past it.
    /// `Ok(false)`: the buffer ends inside it; wait for more. Rejected records fall back to the
    /// scanner, which finds their end.
    fn parse_record(&mut self, on_record: &mut Sink<'_>) -> Result<bool, ReadError> {
        let start = self.pos;
        let mut stream = serde_json::Deserializer::from_slice(&self.buf[start..self.filled])
            .into_iter::<Record>();
        let parsed = stream.next();
        let end = start + stream.byte_offset();
        match parsed.unwrap_or_else(|| Err(serde::de::Error::custom("no value"))) {
            Ok(record) => {
                self.stats.records += 1;
                if self.stats.records > self.limits.max_records {
                    return Err(ReadError::TooManyRecords(self.limits.max_records));
                }
                on_record(Element::Parsed(record));
                self.pos = end;
                self.record_start = None;
                Ok(true)
            }
            Err(e) if e.is_eof() => {
                if self.filled - start > self.limits.max_record_bytes {
                    return Err(ReadError::RecordTooLarge(self.limits.max_record_bytes));
                }
                self.record_start = Some(start);
                Ok(false)
            }
            Err(_) => {
                self.rejected = true;
                self.record_start = Some(start);
                self.record_return = self.mode;
                self.depth = 1;
                self.in_string = false;
                self.escaped = false;
                self.mode = Mode::Record;
                self.pos = start + 1;
                Ok(true)
            }
        }
    }

    /// Advances over the buffered bytes, emitting every record that completes.
    fn run(&mut self, on_record: &mut Sink<'_>) -> Result<(), ReadError> {
        while self.pos < self.filled {
            match self.mode {
                Mode::Record => self.scan_record(on_record)?,
                Mode::Top => {
                    let b = self.buf[self.pos];
                    match b {
                        b'{' => {
                            self.object_start = Some(self.pos);
                            self.saw_records_key = false;
                            self.mode = Mode::TopObject;
                        }
                        b'[' => {
                            self.stats.shape.get_or_insert(Shape::Array);
                            self.mode = Mode::TopArray;
                        }
                        b if is_space(b) || b == 0xEF || b == 0xBB || b == 0xBF => {}
                        _ => return Err(ReadError::Malformed(self.at())),
                    }
                    self.pos += 1;
                }
                Mode::TopArray | Mode::RecordsArray => {
                    let b = self.buf[self.pos];
                    match b {
                        b'{' if self.parse_in_place => {
                            if !self.parse_record(on_record)? {
                                return Ok(());
                            }
                            continue;
                        }
                        b'{' => {
                            self.record_start = Some(self.pos);
                            self.record_return = self.mode;
                            self.depth = 1;
                            self.in_string = false;
                            self.mode = Mode::Record;
                        }
                        b']' => {
                            self.mode = if self.mode == Mode::TopArray {
                                Mode::Top
                            } else {
                                Mode::TopObject
                            };
                        }
                        b',' => {}
                        b if is_space(b) => {}
                        _ => return Err(ReadError::Malformed(self.at())),
                    }
                    self.pos += 1;
                }
                Mode::TopObject => {
                    let b = self.buf[self.pos];
                    match b {
                        b'"' => {
                            self.key_start = self.pos + 1;
                            self.escaped = false;
                            self.mode = Mode::TopKey;
                        }
                        b'}' => {
                            let start = self.object_start.take().unwrap_or(self.pos);
                            if self.saw_records_key {
                                self.stats.shape.get_or_insert(Shape::RecordsObject);
                            } else {
                                self.stats.shape.get_or_insert(Shape::Lines);
                                if self.pos + 1 - start > self.limits.max_record_bytes {
                                    return Err(ReadError::RecordTooLarge(
                                        self.limits.max_record_bytes,
                                    ));
                                }
                                self.emit(start, self.pos + 1, on_record)?;
                            }
                            self.mode = Mode::Top;
                        }
                        b',' => {}
                        b if is_space(b) => {}
                        _ => return Err(ReadError::Malformed(self.at())),
                    }
                    self.pos += 1;
                }
                Mode::TopKey => {
                    let b = self.buf[self.pos];
                    if self.escaped {
                        self.escaped = false;
                    } else if b == b'\\' {
                        self.escaped = true;
                    } else if b == b'"' {
                        self.key_is_records = &self.buf[self.key_start..self.pos] == b"Records";
                        self.mode = Mode::TopColon;
                    }
                    self.pos += 1;
                }
                Mode::TopColon => {
                    let b = self.buf[self.pos];
                    match b {
                        b':' => {}
                        b if is_space(b) => {}
                        b'[' if self.key_is_records => {
                            self.saw_records_key = true;
                            // Records are emitted one by one: the wrapper need not be kept.
                            self.object_start = None;
                            self.mode = Mode::RecordsArray;
                        }
                        _ => {
                            self.mode = Mode::SkipValue;
                            self.skip_depth = 0;
                            self.skip_started = false;
                            self.in_string = false;
                            continue;
                        }
                    }
                    self.pos += 1;
                }
                Mode::SkipValue => {
                    if self
                        .object_start
                        .is_some_and(|start| self.pos - start > self.limits.max_record_bytes)
                    {
                        return Err(ReadError::RecordTooLarge(self.limits.max_record_bytes));
                    }
                    let b = self.buf[self.pos];
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                        self.pos += 1;
                        continue;
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.skip_depth += 1,
                        b'}' | b']' if self.skip_depth > 0 => self.skip_depth -= 1,
                        b',' | b'}' if self.skip_depth == 0 => {
                            // End of a scalar (or of the object): let TopObject handle this byte.
                            self.mode = Mode::TopObject;
                            continue;
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
        }
        Ok(())
    }

    /// Inside a record: jump between quotes and braces until the record's closing brace.
    fn scan_record(&mut self, on_record: &mut Sink<'_>) -> Result<(), ReadError> {
        let start = self.record_start.unwrap_or(self.pos);
        while self.pos < self.filled {
            if self.pos - start > self.limits.max_record_bytes {
                return Err(ReadError::RecordTooLarge(self.limits.max_record_bytes));
            }
            let rest = &self.buf[self.pos..self.filled];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    self.pos += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', rest) {
                    Some(i) => {
                        if rest[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        self.pos += i + 1;
                    }
                    None => self.pos = self.filled,
                }
            } else {
                match memchr::memchr3(b'"', b'{', b'}', rest) {
                    Some(i) => {
                        match rest[i] {
                            b'"' => self.in_string = true,
                            b'{' => self.depth += 1,
                            _ => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    let end = self.pos + i + 1;
                                    self.pos = end;
                                    self.record_start = None;
                                    self.mode = self.record_return;
                                    return self.emit(start, end, on_record);
                                }
                            }
                        }
                        self.pos += i + 1;
                    }
                    None => self.pos = self.filled,
                }
            }
        }
        Ok(())
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn records(input: &[u8]) -> Result<(Vec<String>, ReadStats), ReadError> {
        let mut out = Vec::new();
        let stats = read_records(input, &ReadLimits::default(), |r| {
            out.push(String::from_utf8_lossy(r).into_owned())
        })?;
        Ok((out, stats))
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn reads_every_shape() {
        let wrapped = br#"{"Records":[{"a":1,"b":{"c":"}"}},{"d":"\"{"}]}"#;
        let (out, stats) = records(wrapped).unwrap();
        assert_eq!(out, vec![r#"{"a":1,"b":{"c":"}"}}"#, r#"{"d":"\"{"}"#]);
        assert_eq!(stats.shape, Some(Shape::RecordsObject));
        let (out, stats) = records(&gzip(wrapped)).unwrap();
        assert_eq!(out.len(), 2);
        assert!(stats.compressed_bytes < stats.decompressed_bytes + 30);

        let (out, stats) = records(b" [ {\"x\":[1,{\"y\":2}]} , {} ]\n").unwrap();
        assert_eq!(out, vec![r#"{"x":[1,{"y":2}]}"#, "{}"]);
        assert_eq!(stats.shape, Some(Shape::Array));

        let (out, stats) = records(b"{\"a\":{\"b\":[1,2]},\"c\":\"x}\"}\n{\"d\":null}\n").unwrap();
        assert_eq!(
            out,
            vec!["{\"a\":{\"b\":[1,2]},\"c\":\"x}\"}", "{\"d\":null}"]
        );
        assert_eq!(stats.shape, Some(Shape::Lines));

        let (out, stats) = records(b"  \n").unwrap();
        assert!(out.is_empty());
        assert_eq!(stats.shape, Some(Shape::Empty));

        // Other members of the wrapper are skipped, before or after Records.
        let (out, _) =
            records(br#"{"meta":{"Records":[1]},"Records":[{"k":1}],"tail":[{"z":2}]}"#).unwrap();
        assert_eq!(out, vec![r#"{"k":1}"#]);
        // A digest-like object is a single object without Records: one "record" the fold rejects.
        let (out, _) =
            records(br#"{"awsAccountId":"1","digestStartTime":"x","logFiles":[{"s3Object":"k"}]}"#)
                .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn records_spanning_chunks_are_whole() {
        let mut data = b"{\"Records\":[".to_vec();
        let big = format!("{{\"pad\":\"{}\",\"n\":1}}", "x".repeat(CHUNK * 2 + 17));
        for i in 0..3 {
            if i > 0 {
                data.push(b',');
            }
            data.extend_from_slice(big.as_bytes());
        }
        data.extend_from_slice(b"]}");
        let (out, _) = records(&gzip(&data)).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|r| r == &big));
    }

    #[test]
    fn damage_is_reported_not_panicked() {
        assert!(matches!(
            records(b"LICENSE text"),
            Err(ReadError::NotJson(b'L'))
        ));
        assert!(records(b"LICENSE").unwrap_err().is_not_a_log());
        assert!(matches!(
            records(br#"{"Records":[{"a":1},{"b""#),
            Err(ReadError::Truncated(_))
        ));
        let full = gzip(br#"{"Records":[{"a":1},{"b":2}]}"#);
        assert!(matches!(
            records(&full[..full.len() - 9]),
            Err(ReadError::CorruptGzip(_) | ReadError::Truncated(_))
        ));
        let mut corrupt = full.clone();
        corrupt[12] ^= 0xff;
        corrupt[14] ^= 0xff;
        assert!(records(&corrupt).is_err());
        assert!(matches!(records(b"[1,2]"), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn limits_bound_the_cost() {
        let bomb = gzip(&vec![b' '; 64 << 20]);
        let limits = ReadLimits {
            max_ratio: 100,
            ..ReadLimits::default()
        };
        let err = read_records(&bomb[..], &limits, |_| {}).unwrap_err();
        assert!(matches!(err, ReadError::RatioTooHigh(100)), "{err}");

        let limits = ReadLimits {
            max_decompressed_bytes: 1000,
            ..ReadLimits::default()
        };
        let data = format!("[{}]", vec!["{\"a\":1}"; 500].join(","));
        assert!(matches!(
            read_records(data.as_bytes(), &limits, |_| {}),
            Err(ReadError::DecompressedTooLarge(1000))
        ));
        let limits = ReadLimits {
            max_records: 10,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_records(data.as_bytes(), &limits, |_| {}),
            Err(ReadError::TooManyRecords(10))
        ));
        let limits = ReadLimits {
            max_record_bytes: 100,
            ..ReadLimits::default()
        };
        let long = format!("[{{\"a\":\"{}\"}}]", "y".repeat(500));
        assert!(matches!(
            read_records(long.as_bytes(), &limits, |_| {}),
            Err(ReadError::RecordTooLarge(100))
        ));
        let limits = ReadLimits {
            max_compressed_bytes: 10,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_records(&gzip(data.as_bytes())[..], &limits, |_| {}),
            Err(ReadError::CompressedTooLarge(10))
        ));
    }

    /// Records found by the in-place parser: (parsed eventNames, malformed count).
    fn parsed(input: &[u8]) -> Result<(Vec<String>, usize), ReadError> {
        let (mut names, mut bad) = (Vec::new(), 0);
        read_parsed(input, &ReadLimits::default(), |item| match item {
            Item::Record(r) => names.push(r.event_name.as_deref().unwrap_or("-").to_owned()),
            Item::Malformed => bad += 1,
        })?;
        Ok((names, bad))
    }

    #[test]
    fn in_place_parsing_agrees_with_the_scanner() {
        let wrapped = br#"{"Records":[{"eventName":"A","x":{"y":"}"}},{"eventName":"B\"}"},{"eventName":7},{"eventName":"C"}]}"#;
        assert_eq!(
            parsed(wrapped).unwrap(),
            (vec!["A".into(), "B\"}".into(), "7".into(), "C".into()], 0)
        );
        // An element the parser rejects (invalid UTF-8 in a string) is skipped and counted.
        let mut bad = br#"[{"eventName":"A"},{"eventName":"#.to_vec();
        bad.extend_from_slice(&[b'"', 0xff, 0xfe, b'"']);
        bad.extend_from_slice(br#"},{"eventName":"C"}]"#);
        assert_eq!(parsed(&bad).unwrap(), (vec!["A".into(), "C".into()], 1));
        let lines = b"{\"eventName\":\"L1\"}\n{\"eventName\":\"L2\"}\n";
        assert_eq!(parsed(lines).unwrap(), (vec!["L1".into(), "L2".into()], 0));
        assert!(matches!(
            parsed(br#"{"Records":[{"eventName":"A"},{"eventNa"#),
            Err(ReadError::Truncated(_))
        ));
        // Records longer than a read chunk are parsed whole.
        let big = format!(
            r#"{{"eventName":"Big","pad":"{}"}}"#,
            "x".repeat(CHUNK * 2 + 3)
        );
        let data = format!(r#"{{"Records":[{big},{big},{big}]}}"#);
        assert_eq!(parsed(&gzip(data.as_bytes())).unwrap().0.len(), 3);
    }

    #[test]
    fn small_single_member_gzip_is_inflated_whole_and_agrees_with_plain() {
        let data = br#"{"Records":[{"eventName":"A"},{"eventName":"B","x":[1,{"y":"}"}]}]}"#;
        let gz = gzip(data);
        assert_eq!(
            inflate_whole(&gz, &ReadLimits::default()).as_deref(),
            Some(&data[..])
        );
        let (plain, plain_stats) = records(data).unwrap();
        let (inflated, gz_stats) = records(&gz).unwrap();
        assert_eq!(plain, inflated);
        assert_eq!(plain_stats.records, gz_stats.records);
        assert_eq!(gz_stats.decompressed_bytes, data.len() as u64);
        assert_eq!(gz_stats.compressed_bytes, gz.len() as u64);
        assert_eq!(parsed(&gz).unwrap(), (vec!["A".into(), "B".into()], 0));
    }

    #[test]
    fn peak_read_memory_covers_the_whole_buffer_and_the_streaming_buffer() {
        let limits = ReadLimits::default();
        let streaming = 2 * CHUNK as u64 + limits.max_record_bytes as u64;
        // Small objects: whatever the ratio allows, at least the streaming buffer.
        assert_eq!(
            peak_read_memory(1_000, &limits),
            1_000 + streaming.max(RATIO_GRACE)
        );
        // Larger ones: at most the whole-inflate ceiling, as streaming takes over above it.
        assert_eq!(
            peak_read_memory(1 << 20, &limits),
            (1 << 20) + WHOLE_INFLATE_MAX.max(streaming)
        );
    }

    #[test]
    fn bytes_in_memory_read_as_a_stream_does() {
        let collect = |data: &[u8], from_bytes: bool| {
            let mut names = Vec::new();
            let mut on_item = |item: Item<'_>| {
                names.push(match item {
                    Item::Record(r) => r.event_name.as_deref().unwrap_or("-").to_owned(),
                    Item::Malformed => "malformed".into(),
                })
            };
            let stats = if from_bytes {
                read_parsed_bytes(data, &ReadLimits::default(), &mut on_item)
            } else {
                read_parsed(data, &ReadLimits::default(), &mut on_item)
            };
            stats.map(|s| (names, s.records, s.compressed_bytes))
        };
        let plain = br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#.to_vec();
        let big: String = (0..60_000)
            .map(|i| format!(r#"{{"eventName":"E{i}","pad":"{i:0>200}"}}"#))
            .collect::<Vec<_>>()
            .join(",");
        let streamed = gzip(format!(r#"{{"Records":[{big}]}}"#).as_bytes());
        assert!(streamed.len() > 100_000, "large enough to stream");
        for data in [plain.clone(), gzip(&plain), streamed] {
            assert_eq!(
                collect(&data, true).unwrap(),
                collect(&data, false).unwrap()
            );
        }
        let tight = ReadLimits {
            max_compressed_bytes: 10,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_parsed_bytes(&plain, &tight, |_| {}),
            Err(ReadError::CompressedTooLarge(10))
        ));
    }

    #[test]
    fn every_member_of_a_multi_member_gzip_is_read() {
        let a = gzip(b"{\"eventName\":\"A\"}\n");
        let b = gzip(b"{\"eventName\":\"B\"}\n");
        let joined = [a.clone(), b].concat();
        assert!(may_hold_another_member(&joined));
        assert_eq!(inflate_whole(&joined, &ReadLimits::default()), None);
        assert_eq!(parsed(&joined).unwrap().0, vec!["A", "B"]);
        // Identical members: the last trailer matches the first member's size, which alone
        // would pass for a single member.
        let twice = [a.clone(), a].concat();
        assert_eq!(inflate_whole(&twice, &ReadLimits::default()), None);
        assert_eq!(parsed(&twice).unwrap().0, vec!["A", "A"]);
    }

    #[test]
    fn a_lying_or_oversized_trailer_streams_and_fails_as_before() {
        let data = br#"{"Records":[{"eventName":"A"}]}"#;
        let mut lying = gzip(data);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(inflate_whole(&lying, &ReadLimits::default()), None);
        assert!(matches!(records(&lying), Err(ReadError::CorruptGzip(_))));
        // A trailer announcing more than the limits allow is not trusted with an allocation.
        let mut huge = gzip(data);
        huge[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(inflate_whole(&huge, &ReadLimits::default()), None);
        assert!(records(&huge).is_err());
        let big = gzip(&vec![b' '; (WHOLE_INFLATE_MAX + 1) as usize]);
        assert_eq!(inflate_whole(&big, &ReadLimits::default()), None);
    }

    proptest::proptest! {
        #[test]
        fn in_place_parser_never_panics(data in proptest::collection::vec(proptest::sample::select(b"{}[]\",:\\ ab1Records\xff".to_vec()), 0..256)) {
            let _ = parsed(&data);
            let mut wrapped = b"{\"Records\":[".to_vec();
            wrapped.extend_from_slice(&data);
            let _ = parsed(&wrapped);
        }


        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = read_records(&data[..], &ReadLimits::default(), |r| { let _ = crate::record::Record::parse(r); });
            let _ = read_records(&gzip(&data)[..], &ReadLimits::default(), |_| {});
        }

        #[test]
        fn never_panics_on_json_like_bytes(data in proptest::collection::vec(proptest::sample::select(b"{}[]\",:\\ ab1Records".to_vec()), 0..256)) {
            let _ = read_records(&data[..], &ReadLimits::default(), |r| { let _ = crate::record::Record::parse(r); });
        }
    }
}
