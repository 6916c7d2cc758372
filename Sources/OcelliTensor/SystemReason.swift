import Foundation

/// The operating system's reason for a failed file operation ("Permission denied", "No such file
/// or directory", "No space left on device", "Is a directory") rather than Foundation's error dump
/// ("The operation could not be completed. (NSCocoaErrorDomain error 512.)").
public func systemReason(_ error: Error) -> String {
    let e = error as NSError
    if e.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(e.code))) }
    if let u = e.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(u.code)))
    }
    switch e.code {
    case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "No such file or directory"
    case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return "Permission denied"
    case NSFileWriteOutOfSpaceError: return "No space left on device"
    case NSFileWriteFileExistsError: return "a file is in the way"
    default: return e.localizedDescription
    }
}

/// What a JSON parser said went wrong and where ("Unexpected character 'x' around line 3,
/// column 7"), rather than "The data couldn't be read because it isn't in the correct format".
public func jsonErrorPosition(_ error: Error) -> String {
    if let decoding = error as? DecodingError {
        switch decoding {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
            if let underlying = c.underlyingError { return jsonErrorPosition(underlying) }
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        @unknown default: return "\(decoding)"
        }
    }
    let e = error as NSError
    if let detail = e.userInfo[NSDebugDescriptionErrorKey] as? String, !detail.isEmpty { return detail }
    return e.localizedDescription
}

/// Why a folder could not be created, in the user's terms: a part of the path that is a file, a
/// folder that cannot be written, else the system's reason.
public func folderFailureReason(_ directory: String, _ error: Error) -> String {
    var p = directory
    while !p.isEmpty && p != "/" {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { return "\(p) is a file, not a folder" }
            if access(p, W_OK) != 0 { return "\(p): \(String(cString: strerror(errno)))" }
            break
        }
        p = (p as NSString).deletingLastPathComponent
    }
    return systemReason(error)
}
