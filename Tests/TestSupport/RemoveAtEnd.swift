import Foundation
import XCTest

/// Paths shared by several test classes (built fixtures, images) that only the end of the whole run
/// may remove: a class's tearDown would pull them from under the classes after it.
public final class RemoveAtEnd: NSObject, XCTestObservation {
    nonisolated(unsafe) private static var shared: RemoveAtEnd?
    private static let lock = NSLock()
    private var paths: [String] = []

    public static func register(_ path: String) {
        lock.withLock {
            if shared == nil {
                let observer = RemoveAtEnd()
                shared = observer
                XCTestObservationCenter.shared.addTestObserver(observer)
            }
            shared!.paths.append(path)
        }
    }

    public func testBundleDidFinish(_ testBundle: Bundle) {
        for path in Self.lock.withLock({ paths }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
