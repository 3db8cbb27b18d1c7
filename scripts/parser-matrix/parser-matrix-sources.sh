#!/bin/sh
cd "$(dirname "$0")" && ./target/release/parser-matrix sources ../../tests/data/imap-quirk-responses.txt > out/sources.md
