package org.fenlei

import org.fenlei.core.CoordSystem
import org.fenlei.core.GeofenceStage
import org.fenlei.core.GeofenceStatus
import org.fenlei.core.GpsFix
import org.fenlei.core.InspectionKind
import org.fenlei.core.LatLon
import org.fenlei.core.MediaSyncOptions
import org.fenlei.core.NetworkKind
import org.fenlei.core.NewInspection
import org.fenlei.core.SyncOptions
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir
import java.io.File

/** Patrol track, "check geofence now" and media sync as an Android app calls them. */
class FenleiTrackMediaSyncTest {
    @TempDir
    lateinit var dir: File

    private fun store(): FenleiStore =
        FenleiStore.open(File(dir, "fenlei.sqlite").absolutePath).also {
            it.importStandard(sampleStandardToml())
            it.importCommunitiesCsv(sampleCityCsv())
        }

    @Test
    fun `a GCJ-02 track reads as a walk and the geofence is checked on demand`() = store().use { store ->
        val community = store.community("150102-0001")
        val id = store.createInspection(
            NewInspection(community.id, "hohhot-residential", "2026.1", InspectionKind.DAILY_PATROL),
            "inspector-7",
        )
        // The map SDK reports GCJ-02: the core converts before storing.
        val gcj = convertCoordinates(community.location, CoordSystem.WGS84, CoordSystem.GCJ02)
        val t0 = 1_700_000_000_000L
        val points = (0 until 5).map { i ->
            GpsFix(LatLon(gcj.lat + i * 0.0001, gcj.lon), accuracyM = 5.0, provider = "fused", atMs = t0 + i * 10_000, isMock = false)
        }
        store.addTrackFixes(id, points, CoordSystem.GCJ02, "inspector-7")
        val track = store.patrolTrack(id)
        assertEquals(5, track.fixes.size)
        assertEquals(40_000L, track.durationMs)
        assertTrue(track.lengthM > 40.0 && track.lengthM < 50.0, "length ${track.lengthM}")
        assertEquals(0u, track.outsideGeofence)

        val check = store.checkGeofenceNow(id, GpsFix(gcj, accuracyM = 5.0, provider = "gps", atMs = t0 + 60_000, isMock = false), CoordSystem.GCJ02, "inspector-7")
        assertEquals(GeofenceStage.ON_DEMAND, check.stage)
        assertEquals(GeofenceStatus.INSIDE, check.check.status)
    }

    @Test
    fun `media sync takes the network kind and reports typed errors`() = store().use { store ->
        FenleiMedia.open(store, File(dir, "media").absolutePath).use { media ->
            val quick = SyncOptions(batchDocs = 10u, everyDocument = false, maxRetries = 0u, retryBaseMs = 10uL, timeoutMs = 2000uL)
            FenleiSyncClient("http://127.0.0.1:9", "token", quick).use { client ->
                val options = MediaSyncOptions(NetworkKind.CELLULAR, originalsOnMetered = false, syncDocumentsFirst = true, chunkBytes = 65_536u)
                assertThrows<FenleiException.Network> { client.syncMedia(media, options) }
                val cancel = CancelHandle().also { it.cancel() }
                assertThrows<FenleiException.Cancelled> { client.syncMedia(media, options, cancel = cancel) }
            }
            assertEquals(emptyList<Any>(), media.uploadStates("no-such-inspection"))
        }
    }
}
