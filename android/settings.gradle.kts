// The Fenlei Android library, buildable on its own (`./gradlew :fenlei:assembleRelease`) or
// included in an app's build (see docs/bindings.md: includeBuild or a published AAR).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "fenlei-android"
include(":fenlei")
