//! VBUILD_RECIPES overrides the embedded tailoring profiles and templates
//! (own test binary: it sets a process-wide environment variable).

use vbuild_builder::tailor::{tailor, NetVars, TailorVars, RECIPES_ENV};

#[test]
fn override_directory_wins_and_malformed_profiles_name_the_file() {
    let recipes = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(recipes.path().join("tailor")).unwrap();
    std::fs::create_dir_all(recipes.path().join("templates")).unwrap();
    std::fs::write(
        recipes.path().join("tailor/mini.toml"),
        "[[step]]\nwhy = \"test\"\nwrite = \"/etc/hostname\"\ntemplate = \"hostname\"\n",
    )
    .unwrap();
    std::fs::write(
        recipes.path().join("templates/hostname.hbs"),
        "custom {{hostname}}\n",
    )
    .unwrap();
    std::fs::write(
        recipes.path().join("tailor/broken.toml"),
        "[[step]]\nwhy = \"x\"\nbogus = 1\n",
    )
    .unwrap();
    std::fs::write(
        recipes.path().join("tailor/noaction.toml"),
        "[[step]]\nwhy = \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        recipes.path().join("tailor/typo.toml"),
        "[[step]]\nwhy = \"x\"\nwrite = \"/etc/x\"\ntemplate = \"typo\"\n",
    )
    .unwrap();
    std::fs::write(recipes.path().join("templates/typo.hbs"), "{{hostnme}}\n").unwrap();
    // SAFETY: this test binary has one test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var(RECIPES_ENV, recipes.path()) };

    let root = tempfile::tempdir().unwrap();
    let vars = TailorVars {
        hostname: "web01".into(),
        release: "bookworm".into(),
        mirror: "http://deb.debian.org/debian".into(),
        security_mirror: None,
        suites: vec!["bookworm".into()],
        security_suites: vec![],
        components: vec!["main".into()],
        net: NetVars::default(),
    };
    tailor(root.path(), "mini", &vars).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "custom web01\n"
    );
    // Built-in profiles are still found when the directory lacks them.
    tailor(root.path(), "debian", &vars).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "custom web01\n"
    );

    let e = tailor(root.path(), "broken", &vars)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.toml") && e.contains("bogus"), "{e}");
    let e = tailor(root.path(), "noaction", &vars)
        .unwrap_err()
        .to_string();
    assert!(e.contains("noaction.toml") && e.contains("step 1"), "{e}");
    let e = tailor(root.path(), "typo", &vars).unwrap_err().to_string();
    assert!(e.contains("template typo") && e.contains("hostnme"), "{e}");
    assert!(!root.path().join("etc/x").exists());
}
