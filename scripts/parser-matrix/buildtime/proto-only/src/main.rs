fn main(){ let _ = std::hint::black_box(imap_proto::Response::from_bytes(b"* 1 EXISTS\r\n")); }
