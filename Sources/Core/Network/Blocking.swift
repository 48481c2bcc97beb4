import Core
import Foundation

/// Runs async work to completion from synchronous code. gvlt's pipeline is synchronous; the HTTP
/// client is async. The caller is never on the cooperative pool (commands run on the main thread
/// or on plain threads), so waiting here cannot starve the tasks being waited for.
public enum Blocking {
    private final class Box<T>: @unchecked Sendable {
        var result: Result<T, Error>?
    }

    public static func run<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                box.result = .success(try await body())
            } catch {
                box.result = .failure(error)
            }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }
}
