#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard error for warnings and errors from every module. A write that fails (the stream
/// closed, or redirected to a full disk) is never a trap — Foundation's `FileHandle.write` traps —
/// and C's error flag on `stderr` keeps it, so the command-line tool ends with a failure status.
public enum StandardError {
    public static func write(_ text: String) {
        _ = fputs(text, stderr)
    }
}
