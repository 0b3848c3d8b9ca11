// The one thing the generated API lacks on iOS: a way to honour the threading contract without
// boilerplate. Every generated call blocks; these helpers run it on a detached task so the main
// actor (UI) never waits on SQLite or a long import.
import Foundation

extension FenleiStore {
    /// Opens (or creates) the app's store in Application Support, off the caller's actor.
    public static func openInApplicationSupport(name: String = "fenlei.sqlite") async throws -> FenleiStore {
        try await Task.detached(priority: .userInitiated) {
            let dir = try FileManager.default.url(
                for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            return try FenleiStore.open(path: dir.appendingPathComponent(name).path)
        }.value
    }

    /// Runs blocking store calls off the current actor:
    /// `let card = try await store.background { try $0.score(id: id) }`.
    public func background<T: Sendable>(
        priority: TaskPriority = .userInitiated,
        _ work: @escaping @Sendable (FenleiStore) throws -> T
    ) async throws -> T {
        try await Task.detached(priority: priority) { try work(self) }.value
    }
}
