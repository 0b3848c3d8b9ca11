// The Swift API of Fenlei: the glue (conversions both ways, the error enum, callbacks,
// cancellation, object lifetimes, concurrency), not the scoring arithmetic, which core's tests own.
// Run on a Mac: ios/test.sh
import Foundation
import XCTest
@testable import Fenlei

final class FenleiTests: XCTestCase {
    let standardId = "hohhot-residential"
    let version = "2026.1"
    let community = "150102-0001"
    let inspector = "inspector-7"
    let here = LatLon(lat: 40.8357, lon: 111.7319)
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String = "fenlei.sqlite") -> String { dir.appendingPathComponent(name).path }

    func loadedStore() throws -> FenleiStore {
        let store = try FenleiStore.open(path: path())
        _ = try store.importStandard(toml: sampleStandardToml())
        _ = try store.importCommunitiesCsv(csv: sampleCityCsv())
        return store
    }

    func newInspection(_ store: FenleiStore) throws -> String {
        try store.createInspection(
            new: NewInspection(communityId: community, standardId: standardId, standardVersion: version, kind: .dailyPatrol),
            by: inspector)
    }

    func ctx(_ user: String? = nil, reason: String? = nil) -> EditContext {
        EditContext(userId: user ?? inspector, amendmentReason: reason)
    }

    final class Recorder: ProgressListener, @unchecked Sendable {
        let lock = NSLock()
        var calls: [(UInt64, UInt64)] = []
        let onCall: (UInt64, UInt64) throws -> Void
        init(onCall: @escaping (UInt64, UInt64) throws -> Void = { _, _ in }) { self.onCall = onCall }
        func onProgress(done: UInt64, total: UInt64) {
            lock.lock(); calls.append((done, total)); lock.unlock()
            try? onCall(done, total)
        }
    }

    // MARK: the inspector's day

    func testRecordAnInspectionAndReadItsScoreAndHistory() throws {
        let store = try loadedStore()
        XCTAssertEqual(try store.communityCount(), 200)
        let near = try store.nearestCommunities(at: LatLon(lat: 40.8357, lon: 111.7320), system: .wgs84, limit: 3)
        XCTAssertEqual(near.first?.community.id, community)

        let id = try store.createInspection(
            new: NewInspection(communityId: community, standardId: standardId, standardVersion: version,
                               kind: .unannounced, coInspectors: ["inspector-8"]),
            by: inspector)
        let answers = [
            ItemAnswer(itemCode: "A01", value: .observed),
            ItemAnswer(itemCode: "A02", value: .deduction(points: 2.5), note: "宣传栏内容陈旧"),
            ItemAnswer(itemCode: "B01", value: .occurrences(counts: [OccurrenceCount(finding: "missing_category", count: 2)]), sampledUnits: 4),
            ItemAnswer(itemCode: "B04", value: .notApplicable),
            ItemAnswer(itemCode: "E01", value: .rate(percent: 76.5)),
            ItemAnswer(itemCode: "H01", value: .compliant),
        ]
        for a in answers {
            try store.recordAnswer(inspectionId: id, answer: a, ctx: EditContext(userId: inspector, location: here))
        }
        try store.addGpsFix(inspectionId: id, fix: GpsFix(location: here, accuracyM: 8, provider: "gps", atMs: 1_700_000_000_000, isMock: false), by: inspector)
        let sha = String(repeating: "ab", count: 32)
        try store.addEvidence(inspectionId: id, evidence: EvidenceRef(sha256: sha, itemCode: "A02", media: .photo, addedBy: inspector, atMs: 1))
        try store.setStatus(inspectionId: id, to: .submitted, ctx: ctx())

        let got = try store.inspection(id: id)
        XCTAssertEqual(got.status, .submitted)
        XCTAssertEqual(Set(got.inspectors), [inspector, "inspector-8"])
        let byCode = Dictionary(uniqueKeysWithValues: got.answers.map { ($0.answer.itemCode, $0) })
        for a in answers {
            XCTAssertEqual(byCode[a.itemCode]?.answer, a)
            XCTAssertEqual(byCode[a.itemCode]?.location, here)
        }
        XCTAssertEqual(got.evidence.map(\.sha256), [sha])
        XCTAssertNil(got.gpsFixes.first?.altitudeM)

        let card = try store.score(id: id)
        XCTAssertEqual(card.standardVersion, version)
        XCTAssertTrue(card.total > 0 && card.total < card.maxPoints)
        XCTAssertFalse(card.vetoed)

        let actions = try store.history(id: id).map(\.action)
        XCTAssertEqual(actions.first, "create")
        XCTAssertEqual(actions.filter { $0 == "answer" }.count, answers.count)
        XCTAssertTrue(Set(actions).isSuperset(of: ["gps", "evidence", "status"]))

        XCTAssertEqual(try store.listInspections(filter: InspectionFilter(communityId: community)).map(\.id), [id])
        XCTAssertEqual(try store.latestScore(communityId: community)?.inspectionId, id)
        XCTAssertNil(try store.latestScore(communityId: "150102-0002"))

        _ = try store.importStandard(toml: sampleStandardNextToml())
        XCTAssertEqual(try store.rescore(id: id, standardId: standardId, version: "2026.2").standardVersion, "2026.2")
    }

    func testTheStandardRecordCarriesTheChecklist() throws {
        let s = try loadedStore().standard(id: standardId, version: version)
        let items = s.sections.flatMap(\.items)
        XCTAssertEqual(items.count, 25)
        guard case let .range(min, max) = items.first(where: { $0.code == "A02" })!.rule else {
            return XCTFail("A02 is a range item")
        }
        XCTAssertEqual([min, max], [1, 5])
    }

    func testDocumentBytesMoveBetweenDevices() throws {
        let a = try loadedStore()
        let id = try newInspection(a)
        try a.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: "A01", value: .observed), ctx: ctx())
        let b = try FenleiStore.open(path: path("other.sqlite"))
        _ = try b.importStandard(toml: sampleStandardToml())
        try b.applyDocumentBytes(id: id, bytes: try a.documentBytes(id: id))
        XCTAssertEqual(try b.inspection(id: id), try a.inspection(id: id))
        XCTAssertNotEqual(b.deviceId(), a.deviceId())
    }

    // MARK: errors

    func assertThrows<T>(_ expected: (FenleiError) -> Bool, _ call: @autoclosure () throws -> T,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try call(), file: file, line: line) { error in
            guard let e = error as? FenleiError else { return XCTFail("not a FenleiError: \(error)", file: file, line: line) }
            XCTAssertTrue(expected(e), "unexpected \(e)", file: file, line: line)
        }
    }

    func isNotFound(_ e: FenleiError) -> Bool { if case .NotFound = e { return true }; return false }
    func isInvalidInput(_ e: FenleiError) -> Bool { if case .InvalidInput = e { return true }; return false }
    func isInvalidState(_ e: FenleiError) -> Bool { if case .InvalidState = e { return true }; return false }

    func testUnknownIdsAreNotFound() throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        assertThrows(isNotFound, try store.community(id: "no-such-community"))
        assertThrows(isNotFound, try store.standard(id: standardId, version: "1999.1"))
        assertThrows(isNotFound, try store.score(id: "no-such-inspection"))
        assertThrows(isNotFound, try store.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: "Z99", value: .observed), ctx: ctx()))
    }

    func testOutOfRangeValuesAreInvalidInput() throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        for bad in [
            ItemAnswer(itemCode: "E01", value: .rate(percent: 150)),
            ItemAnswer(itemCode: "A02", value: .deduction(points: 9), note: "太旧"),
            ItemAnswer(itemCode: "A02", value: .deduction(points: 2)),
            ItemAnswer(itemCode: "E01", value: .rate(percent: .nan)),
        ] {
            assertThrows(isInvalidInput, try store.recordAnswer(inspectionId: id, answer: bad, ctx: ctx()))
        }
        assertThrows(isInvalidInput, try store.nearestCommunities(at: LatLon(lat: 200, lon: 0), system: .wgs84, limit: 1))
        XCTAssertTrue(try store.inspection(id: id).answers.isEmpty)
    }

    func testWorkflowViolationsAreInvalidState() throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        assertThrows(isInvalidState, try store.setStatus(inspectionId: id, to: .approved, ctx: ctx("supervisor-1")))
        try store.setStatus(inspectionId: id, to: .submitted, ctx: ctx())
        assertThrows(isInvalidState, try store.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: "A01", value: .observed), ctx: ctx()))
        try store.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: "A01", value: .observed), ctx: ctx(reason: "补录"))
    }

    func testCorruptBytesAndBadPathsAreTyped() throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        assertThrows({ if case .Corrupt = $0 { return true }; return false },
                     try store.applyDocumentBytes(id: id, bytes: Data("not automerge".utf8)))
        let isStorage: (FenleiError) -> Bool = { if case .Storage = $0 { return true }; return false }
        assertThrows(isStorage, try FenleiStore.open(path: dir.appendingPathComponent("missing/fenlei.sqlite").path))
        assertThrows(isStorage, try FenleiStore.open(path: dir.path))
    }

    func testMessagesCarryNoPersonalData() throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        do {
            try store.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: "A02", value: .deduction(points: 99), note: "张三说他昨天没来"), ctx: ctx())
            XCTFail("expected an error")
        } catch let FenleiError.InvalidInput(message) {
            XCTAssertTrue(message.contains("A02"))
            XCTAssertFalse(message.contains("张三"))
        }
    }

    // MARK: progress and cancellation

    func testProgressReachesTheEnd() throws {
        let store = try FenleiStore.open(path: path())
        let rec = Recorder()
        XCTAssertEqual(try store.importCommunitiesCsv(csv: sampleCityCsv(), progress: rec), 200)
        XCTAssertEqual(rec.calls.last?.0, 200)
        XCTAssertEqual(rec.calls.last?.1, 200)
    }

    func testCancelBeforeAndDuringTheWorkCommitsNothing() throws {
        let store = try FenleiStore.open(path: path())
        let isCancelled: (FenleiError) -> Bool = { if case .Cancelled = $0 { return true }; return false }
        let pre = CancelHandle()
        pre.cancel()
        assertThrows(isCancelled, try store.importCommunitiesCsv(csv: sampleCityCsv(), cancel: pre))
        let handle = CancelHandle()
        let rec = Recorder { _, _ in handle.cancel() }
        assertThrows(isCancelled, try store.importCommunitiesCsv(csv: sampleCityCsv(), progress: rec, cancel: handle))
        XCTAssertFalse(rec.calls.isEmpty)
        XCTAssertEqual(try store.communityCount(), 0)
        XCTAssertEqual(try store.importCommunitiesCsv(csv: sampleCityCsv(), cancel: CancelHandle()), 200)
    }

    // MARK: lifetimes and concurrency

    func testDataOutlivesTheStoreObject() throws {
        var store: FenleiStore? = try FenleiStore.open(path: path())
        _ = try store!.importStandard(toml: sampleStandardToml())
        let device = store!.deviceId()
        let standard = try store!.standard(id: standardId, version: version)
        store = nil // deinit frees the Rust object
        XCTAssertEqual(standard.sections.first?.items.first?.code, "A01")
        let again = try FenleiStore.open(path: path())
        XCTAssertEqual(again.deviceId(), device)
        XCTAssertEqual(try again.standards().map(\.version), [version])
    }

    func testOneStoreSharedByConcurrentTasks() async throws {
        let store = try loadedStore()
        let id = try newInspection(store)
        let codes = ["A01", "A03", "B03", "B05", "C04", "D03"]
        let user = inspector
        try await withThrowingTaskGroup(of: Void.self) { group in
            for code in codes {
                group.addTask {
                    try await store.background {
                        try $0.recordAnswer(inspectionId: id, answer: ItemAnswer(itemCode: code, value: .observed),
                                            ctx: EditContext(userId: user))
                    }
                }
            }
            try await group.waitForAll()
        }
        let recorded = try await store.background { try $0.inspection(id: id) }.answers.map(\.answer.itemCode)
        XCTAssertEqual(recorded.sorted(), codes.sorted())
    }
}
