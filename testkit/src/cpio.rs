//! Synthetic newc cpio archives (the format of RPM payloads), including
//! hostile ones, for the entry reader's and the writer's tests.

/// Builds a newc ("070701") cpio archive.
#[derive(Debug, Clone, Default)]
pub struct CpioBuilder {
    out: Vec<u8>,
    ino: u32,
}

/// The mtime every entry gets.
const MTIME: u32 = 1_686_355_200;

impl CpioBuilder {
    /// An empty archive.
    pub fn new() -> CpioBuilder {
        CpioBuilder::default()
    }

    fn push(&mut self, name: &str, mode: u32, ids: (u32, u32), nlink: u32, ino: u32, data: &[u8]) {
        let namesize = name.len() + 1;
        let fields = [
            ino,
            mode,
            ids.0,
            ids.1,
            nlink,
            MTIME,
            data.len() as u32,
            0,
            0,
            0,
            0,
            namesize as u32,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
        self.out.extend_from_slice(data);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn next_ino(&mut self) -> u32 {
        self.ino += 1;
        self.ino
    }

    /// A directory.
    pub fn dir(mut self, name: &str, mode: u32) -> CpioBuilder {
        let ino = self.next_ino();
        self.push(name, libc::S_IFDIR | mode, (0, 0), 2, ino, b"");
        self
    }

    /// A regular file owned by root (the name is stored as given, `..` too).
    pub fn file(self, name: &str, data: &[u8], mode: u32) -> CpioBuilder {
        self.file_owned(name, data, mode, 0, 0)
    }

    /// A regular file with an owner.
    pub fn file_owned(
        mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> CpioBuilder {
        let ino = self.next_ino();
        self.push(name, libc::S_IFREG | mode, (uid, gid), 1, ino, data);
        self
    }

    /// A symlink.
    pub fn symlink(mut self, name: &str, target: &str) -> CpioBuilder {
        let ino = self.next_ino();
        self.push(
            name,
            libc::S_IFLNK | 0o777,
            (0, 0),
            1,
            ino,
            target.as_bytes(),
        );
        self
    }

    /// A fifo.
    pub fn fifo(mut self, name: &str) -> CpioBuilder {
        let ino = self.next_ino();
        self.push(name, libc::S_IFIFO | 0o644, (0, 0), 1, ino, b"");
        self
    }

    /// One file under several names, as rpm writes it: the data with the
    /// last name, size 0 for the others.
    pub fn hardlinked(mut self, names: &[&str], data: &[u8], mode: u32) -> CpioBuilder {
        let ino = self.next_ino();
        let n = names.len() as u32;
        for (i, name) in names.iter().enumerate() {
            let d = if i + 1 == names.len() { data } else { b"" };
            self.push(name, libc::S_IFREG | mode, (0, 0), n, ino, d);
        }
        self
    }

    /// The archive bytes, with the trailer.
    pub fn build(mut self) -> Vec<u8> {
        self.push("TRAILER!!!", 0, (0, 0), 1, 0, b"");
        self.out
    }
}
