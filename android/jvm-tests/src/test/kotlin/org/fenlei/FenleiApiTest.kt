package org.fenlei

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.fenlei.core.AnswerValue
import org.fenlei.core.CoordSystem
import org.fenlei.core.EditContext
import org.fenlei.core.EvidenceRef
import org.fenlei.core.SyncOptions
import org.fenlei.core.GpsFix
import org.fenlei.core.InspectionFilter
import org.fenlei.core.InspectionKind
import org.fenlei.core.InspectionStatus
import org.fenlei.core.ItemAnswer
import org.fenlei.core.LatLon
import org.fenlei.core.MediaKind
import org.fenlei.core.NewInspection
import org.fenlei.core.OccurrenceCount
import org.fenlei.core.Rule
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.util.concurrent.CopyOnWriteArrayList

/**
 * The Kotlin API as an Android app sees it, run on the JVM: the glue (conversions both ways,
 * the sealed exception hierarchy, callbacks, cancellation, object lifetimes, threads), not the
 * scoring arithmetic, which core's tests own.
 */
class FenleiApiTest {
    @TempDir
    lateinit var dir: File

    private val standardId = "hohhot-residential"
    private val version = "2026.1"
    private val community = "150102-0001"
    private val inspector = "inspector-7"
    private val here = LatLon(lat = 40.8357, lon = 111.7319)

    private fun path(name: String = "fenlei.sqlite") = File(dir, name).absolutePath

    private fun loadedStore(): FenleiStore = FenleiStore.open(path()).also {
        it.importStandard(sampleStandardToml())
        it.importCommunitiesCsv(sampleCityCsv())
    }

    private fun FenleiStore.newInspection(kind: InspectionKind = InspectionKind.DAILY_PATROL): String =
        createInspection(NewInspection(community, standardId, version, kind), inspector)

    private fun ctx(user: String = inspector, reason: String? = null) =
        EditContext(userId = user, amendmentReason = reason)

    private class Recorder(val onCall: (ULong, ULong) -> Unit = { _, _ -> }) : ProgressListener {
        val calls = CopyOnWriteArrayList<Pair<ULong, ULong>>()
        val threads = CopyOnWriteArrayList<Long>()
        override fun onProgress(done: ULong, total: ULong) {
            calls.add(done to total)
            threads.add(Thread.currentThread().id)
            onCall(done, total)
        }
    }

    // ----- the inspector's day ------------------------------------------------------------

    @Test
    fun `record an inspection and read its score and history`() = loadedStore().use { store ->
        assertEquals(200uL, store.communityCount())
        val near = store.nearestCommunities(LatLon(40.8357, 111.7320), CoordSystem.WGS84, 3u)
        assertEquals(community, near.first().community.id)
        assertTrue(near[0].distanceM < near[1].distanceM)

        val id = store.createInspection(
            NewInspection(community, standardId, version, InspectionKind.UNANNOUNCED, coInspectors = listOf("inspector-8")),
            inspector,
        )
        val answers = listOf(
            ItemAnswer("A01", AnswerValue.Observed),
            ItemAnswer("A02", AnswerValue.Deduction(2.5), note = "宣传栏内容陈旧"),
            ItemAnswer("B01", AnswerValue.Occurrences(listOf(OccurrenceCount("missing_category", 2u))), sampledUnits = 4u),
            ItemAnswer("B04", AnswerValue.NotApplicable),
            ItemAnswer("E01", AnswerValue.Rate(76.5)),
            ItemAnswer("H01", AnswerValue.Compliant),
        )
        answers.forEach { store.recordAnswer(id, it, EditContext(inspector, location = here)) }
        store.addGpsFix(id, GpsFix(here, accuracyM = 8.0, provider = "fused", atMs = 1_700_000_000_000, isMock = false), inspector)
        val sha = "ab".repeat(32)
        store.addEvidence(id, EvidenceRef(sha, "A02", MediaKind.PHOTO, inspector, 1))
        store.setStatus(id, InspectionStatus.SUBMITTED, ctx())

        val got = store.inspection(id)
        assertEquals(InspectionStatus.SUBMITTED, got.status)
        assertEquals(InspectionKind.UNANNOUNCED, got.kind)
        assertEquals(setOf(inspector, "inspector-8"), got.inspectors.toSet())
        val byCode = got.answers.associateBy { it.answer.itemCode }
        answers.forEach {
            assertEquals(it, byCode.getValue(it.itemCode).answer)
            assertEquals(here, byCode.getValue(it.itemCode).location)
        }
        assertEquals(8.0, got.gpsFixes.single().accuracyM)
        assertNull(got.gpsFixes.single().altitudeM)
        assertEquals(listOf(sha), got.evidence.map { it.sha256 })

        val card = store.score(id)
        assertEquals(version, card.standardVersion)
        assertTrue(card.total > 0 && card.total < card.maxPoints)
        assertFalse(card.vetoed)
        assertTrue(card.grade.isNotEmpty())

        val actions = store.history(id).map { it.action }
        assertEquals("create", actions.first())
        assertEquals(answers.size, actions.count { it == "answer" })
        assertTrue(actions.containsAll(listOf("gps", "evidence", "status")))

        val rows = store.listInspections(InspectionFilter(communityId = community))
        assertEquals(listOf(id), rows.map { it.id })
        assertEquals(card.total, rows.single().total)
        assertEquals(id, store.latestScore(community)?.inspectionId)
        assertEquals(listOf(id), store.scoreTrend(community, 10u).map { it.inspectionId })
        assertNull(store.latestScore("150102-0002"))

        store.importStandard(sampleStandardNextToml())
        assertEquals("2026.2", store.rescore(id, standardId, "2026.2").standardVersion)
        assertEquals(version, store.score(id).standardVersion)
    }

    @Test
    fun `the standard record carries the checklist`() = loadedStore().use { store ->
        val s = store.standard(standardId, version)
        val items = s.sections.flatMap { it.items }
        assertEquals(25, items.size)
        val rule = items.first { it.code == "A02" }.rule
        assertTrue(rule is Rule.Range && rule.min == 1.0 && rule.max == 5.0)
        assertEquals("优秀", s.grades.first().label)
    }

    @Test
    fun `document bytes move between devices`() {
        loadedStore().use { a ->
            val id = a.newInspection()
            a.recordAnswer(id, ItemAnswer("A01", AnswerValue.Observed), ctx())
            FenleiStore.open(path("other.sqlite")).use { b ->
                b.importStandard(sampleStandardToml())
                b.applyDocumentBytes(id, a.documentBytes(id))
                assertEquals(a.inspection(id), b.inspection(id))
                assertNotEquals(a.deviceId(), b.deviceId())
            }
        }
    }

    // ----- sync client glue (the protocol is tested against a real server in tests/ and Python) --

    @Test
    fun `sync client errors are typed`() = loadedStore().use { store ->
        // Plain HTTP is refused off this machine; an empty token is refused.
        assertThrows<FenleiException.InvalidInput> { FenleiSyncClient("http://example.org", "token") }
        assertThrows<FenleiException.InvalidInput> { FenleiSyncClient("http://127.0.0.1:9", "  ") }
        // Nothing listens on the discard port: a network error, after no retries.
        val quick = SyncOptions(batchDocs = 10u, everyDocument = false, maxRetries = 0u, retryBaseMs = 10uL, timeoutMs = 2000uL)
        FenleiSyncClient("http://127.0.0.1:9", "token", quick).use { client ->
            assertThrows<FenleiException.Network> { client.sync(store) }
        }
        assertNull(syncAssignments(store))
    }

    // ----- errors: a sealed hierarchy -------------------------------------------------------

    @Test
    fun `unknown ids are NotFound`() = loadedStore().use { store ->
        val id = store.newInspection()
        assertThrows<FenleiException.NotFound> { store.community("no-such-community") }
        assertThrows<FenleiException.NotFound> { store.standard(standardId, "1999.1") }
        assertThrows<FenleiException.NotFound> { store.score("no-such-inspection") }
        assertThrows<FenleiException.NotFound> { store.recordAnswer(id, ItemAnswer("Z99", AnswerValue.Observed), ctx()) }
        assertThrows<FenleiException.NotFound> {
            store.createInspection(NewInspection("nowhere", standardId, version, InspectionKind.SPECIAL), inspector)
        }
        Unit
    }

    @Test
    fun `out-of-range values are InvalidInput and change nothing`() = loadedStore().use { store ->
        val id = store.newInspection()
        listOf(
            ItemAnswer("E01", AnswerValue.Rate(150.0)),
            ItemAnswer("A02", AnswerValue.Deduction(9.0), note = "太旧"),
            ItemAnswer("A02", AnswerValue.Deduction(2.0)),
            ItemAnswer("A01", AnswerValue.Rate(50.0)),
            ItemAnswer("E01", AnswerValue.Rate(Double.NaN)),
        ).forEach { bad ->
            assertThrows<FenleiException.InvalidInput> { store.recordAnswer(id, bad, ctx()) }
        }
        assertThrows<FenleiException.InvalidInput> {
            store.nearestCommunities(LatLon(200.0, 0.0), CoordSystem.WGS84, 1u)
        }
        assertThrows<FenleiException.InvalidInput> { store.importStandard("format = 1\nid = 'x'\n") }
        assertThrows<FenleiException.InvalidInput> { store.importCommunitiesCsv("小区编号,小区名称\n1,\n".toByteArray()) }
        assertTrue(store.inspection(id).answers.isEmpty())
    }

    @Test
    fun `workflow violations are InvalidState`() = loadedStore().use { store ->
        val id = store.newInspection()
        assertThrows<FenleiException.InvalidState> { store.setStatus(id, InspectionStatus.APPROVED, ctx("supervisor-1")) }
        store.setStatus(id, InspectionStatus.SUBMITTED, ctx())
        assertThrows<FenleiException.InvalidState> { store.recordAnswer(id, ItemAnswer("A01", AnswerValue.Observed), ctx()) }
        store.recordAnswer(id, ItemAnswer("A01", AnswerValue.Observed), ctx(reason = "补录"))
        store.setStatus(id, InspectionStatus.RETURNED, ctx("supervisor-1"), comment = "照片不清")
        assertEquals("照片不清", store.inspection(id).events.last().text)
    }

    @Test
    fun `corrupt bytes and bad paths are typed`() {
        loadedStore().use { store ->
            val id = store.newInspection()
            assertThrows<FenleiException.Corrupt> { store.applyDocumentBytes(id, "not automerge".toByteArray()) }
        }
        assertThrows<FenleiException.Storage> { FenleiStore.open(File(dir, "missing/fenlei.sqlite").path) }
        assertThrows<FenleiException.Storage> { FenleiStore.open(dir.path) }
        val junk = File(dir, "junk.sqlite").apply { writeText("this is not a database file".repeat(100)) }
        // A damaged database file is Corrupt: kept aside under a new name, and the same path
        // then opens as a fresh store (docs/reliability.md).
        assertThrows<FenleiException.Corrupt> { FenleiStore.open(junk.path) }
        assertTrue(dir.listFiles()!!.any { it.name.startsWith("junk.sqlite.corrupt-") })
        FenleiStore.open(junk.path).close()
    }

    @Test
    fun `every error is one catchable FenleiException with a message free of personal data`() = loadedStore().use { store ->
        val id = store.newInspection()
        val note = "张三说他昨天没来"
        val e: FenleiException = assertThrows<FenleiException> {
            store.recordAnswer(id, ItemAnswer("A02", AnswerValue.Deduction(99.0), note = note), ctx())
        }
        // An exhaustive `when` over the sealed hierarchy compiles without `else`.
        val kind = when (e) {
            is FenleiException.NotFound -> "not found"
            is FenleiException.InvalidInput -> "invalid input"
            is FenleiException.InvalidState -> "invalid state"
            is FenleiException.Corrupt -> "corrupt"
            is FenleiException.Storage -> "storage"
            is FenleiException.Cancelled -> "cancelled"
            is FenleiException.Network -> "network"
            is FenleiException.AccessDenied -> "access denied"
            is FenleiException.WrongKey -> "wrong key"
            is FenleiException.Internal -> "internal"
        }
        assertEquals("invalid input", kind)
        assertTrue(e.message!!.contains("A02"))
        assertFalse(e.message!!.contains("张三"))
    }

    // ----- progress and cancellation --------------------------------------------------------

    @Test
    fun `progress reaches the end on the calling thread`() = FenleiStore.open(path()).use { store ->
        val rec = Recorder()
        assertEquals(200u, store.importCommunitiesCsv(sampleCityCsv(), progress = rec))
        assertEquals(200uL to 200uL, rec.calls.last())
        assertEquals(rec.calls.map { it.first }.sorted(), rec.calls.map { it.first })
        assertEquals(setOf(Thread.currentThread().id), rec.threads.toSet())
    }

    @Test
    fun `cancel before and during the work commits nothing`() = FenleiStore.open(path()).use { store ->
        CancelHandle().use { pre ->
            pre.cancel()
            assertThrows<FenleiException.Cancelled> { store.importCommunitiesCsv(sampleCityCsv(), cancel = pre) }
        }
        val handle = CancelHandle()
        val rec = Recorder { _, _ -> handle.cancel() }
        assertThrows<FenleiException.Cancelled> { store.importCommunitiesCsv(sampleCityCsv(), rec, handle) }
        assertTrue(rec.calls.isNotEmpty())
        assertTrue(handle.isCancelled())
        assertEquals(0uL, store.communityCount())
        assertEquals(200u, store.importCommunitiesCsv(sampleCityCsv(), cancel = CancelHandle()))
    }

    @Test
    fun `cancel from another coroutine`() = runBlocking {
        FenleiStore.open(path()).use { store ->
            val handle = CancelHandle()
            withContext(Dispatchers.Default) { handle.cancel() }
            assertThrows<FenleiException.Cancelled> {
                runBlocking(Dispatchers.IO) { store.importCommunitiesCsv(sampleCityCsv(), cancel = handle) }
            }
            Unit
        }
    }

    @Test
    fun `a throwing listener is Internal and the store survives`() = FenleiStore.open(path()).use { store ->
        val e = assertThrows<FenleiException.Internal> {
            store.importCommunitiesCsv(sampleCityCsv(), Recorder { _, _ -> throw IllegalStateException("listener bug") })
        }
        assertTrue(e.message!!.contains("import_communities_csv"))
        assertEquals(0uL, store.communityCount())
        assertEquals(200u, store.importCommunitiesCsv(sampleCityCsv()))
    }

    // ----- object lifetimes and threads -----------------------------------------------------

    @Test
    fun `a closed store refuses calls and its data survives a reopen`() {
        val store = FenleiStore.open(path())
        store.importStandard(sampleStandardToml())
        val device = store.deviceId()
        val standard = store.standard(standardId, version)
        store.close()
        assertThrows<IllegalStateException> { store.standards() }
        store.close() // closing twice is harmless
        assertEquals("A01", standard.sections.first().items.first().code) // records are plain values
        FenleiStore.open(path()).use { again ->
            assertEquals(device, again.deviceId())
            assertEquals(listOf(version), again.standards().map { it.version })
        }
    }

    @Test
    fun `a cancel handle outlives the store it was used with`() {
        val handle = CancelHandle()
        FenleiStore.open(path()).use { it.importCommunitiesCsv(sampleCityCsv(), cancel = handle) }
        handle.cancel()
        assertTrue(handle.isCancelled())
        handle.close()
    }

    @Test
    fun `one store shared by coroutines on Dispatchers IO`() = runBlocking {
        loadedStore().use { store ->
            val id = store.newInspection()
            val codes = listOf("A01", "A03", "B03", "B05", "C04", "D03")
            codes.map { code ->
                async(Dispatchers.IO) { store.recordAnswer(id, ItemAnswer(code, AnswerValue.Observed), ctx()) }
            }.awaitAll()
            assertEquals(codes.sorted(), store.inspection(id).answers.map { it.answer.itemCode }.sorted())
        }
    }

    @Test
    fun `sample data and geo helpers`() {
        assertTrue(sampleStandardToml().startsWith("#"))
        assertTrue(fenleiVersion().isNotEmpty())
        val wgs = LatLon(40.8357, 111.7320)
        val gcj = convertCoordinates(wgs, CoordSystem.WGS84, CoordSystem.GCJ02)
        assertTrue(distanceM(wgs, gcj) in 100.0..1000.0)
        assertThrows<FenleiException.InvalidInput> { distanceM(LatLon(Double.NaN, 0.0), wgs) }
        Unit
    }
}
