//! Diesel table definitions, shared by both backends. Only SQL types that SQLite and
//! PostgreSQL both support are used (UUIDs are `Text`, times are UTC `Timestamp`).

diesel::table! {
    persons (id) {
        id -> Integer,
        email -> Text,
        password_hash -> Text,
        display_name -> Text,
        organization -> Text,
        is_staff -> Bool,
        is_superuser -> Bool,
        is_active -> Bool,
        created_at -> Timestamp,
        session_generation -> Integer,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    password_resets (id) {
        id -> Integer,
        person_id -> Integer,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    question_sets (id) {
        id -> Integer,
        label -> Text,
        display_name -> Text,
        reference -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sections (id) {
        id -> Integer,
        question_set_id -> Integer,
        position -> Integer,
        title -> Text,
        guidance -> Text,
    }
}

diesel::table! {
    subsections (id) {
        id -> Integer,
        section_id -> Integer,
        position -> Integer,
        title -> Text,
        guidance -> Text,
    }
}

diesel::table! {
    questions (id) {
        id -> Integer,
        subsection_id -> Integer,
        parent_id -> Nullable<Integer>,
        position -> Integer,
        text -> Text,
        answering_round -> Integer,
        only_subsections_for_context -> Bool,
        additional_llm_instruction -> Text,
        only_additional_llm_instruction -> Bool,
    }
}

diesel::table! {
    question_context_subsections (question_id, subsection_id) {
        question_id -> Integer,
        subsection_id -> Integer,
    }
}

diesel::table! {
    investigations (id) {
        id -> Integer,
        owner_id -> Integer,
        title -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    studies (id) {
        id -> Integer,
        investigation_id -> Integer,
        title -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    assays (id) {
        id -> Integer,
        study_id -> Integer,
        question_set_id -> Nullable<Integer>,
        title -> Text,
        description -> Text,
        status -> Text,
        alerts -> Text,
        processing_log -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        consent_withdrawn_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    answers (id) {
        id -> Integer,
        assay_id -> Integer,
        question_id -> Integer,
        text -> Text,
        accepted -> Bool,
        source_documents -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    answer_edits (id) {
        id -> Integer,
        answer_id -> Integer,
        editor_id -> Nullable<Integer>,
        old_text -> Text,
        new_text -> Text,
        edited_at -> Timestamp,
    }
}

diesel::table! {
    file_assets (id) {
        id -> Text,
        bucket -> Text,
        object_key -> Text,
        original_filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        status -> Text,
        uploaded_by -> Nullable<Integer>,
        assay_id -> Nullable<Integer>,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    answer_files (id) {
        id -> Integer,
        answer_id -> Integer,
        file_id -> Text,
        label -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    file_download_logs (id) {
        id -> Integer,
        file_id -> Text,
        original_filename -> Text,
        person_id -> Nullable<Integer>,
        person_email -> Text,
        ip_address -> Text,
        downloaded_at -> Timestamp,
    }
}

diesel::table! {
    file_audit_events (id) {
        id -> Integer,
        file_id -> Text,
        event -> Text,
        detail -> Text,
        actor -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    jobs (id) {
        id -> Integer,
        kind -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        run_after -> Timestamp,
        locked_by -> Nullable<Text>,
        heartbeat_at -> Nullable<Timestamp>,
        last_error -> Text,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        subject -> Nullable<Text>,
        claim_token -> Nullable<Text>,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        failures -> Integer,
        window_start -> Timestamp,
    }
}

diesel::table! {
    file_passages (id) {
        id -> Integer,
        file_id -> Text,
        position -> Integer,
        location -> Text,
        char_start -> Integer,
        char_end -> Integer,
        text -> Text,
    }
}

diesel::table! {
    answer_citations (id) {
        id -> Integer,
        answer_id -> Integer,
        number -> Integer,
        file_id -> Nullable<Text>,
        document_name -> Text,
        passage_position -> Nullable<Integer>,
        location -> Text,
        quote -> Text,
        verified -> Bool,
        char_start -> Nullable<Integer>,
        char_end -> Nullable<Integer>,
    }
}

diesel::table! {
    benchmark_sets (id) {
        id -> Integer,
        name -> Text,
        description -> Text,
        out_of_scope -> Bool,
        question_set_id -> Integer,
        created_by -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    benchmark_items (id) {
        id -> Integer,
        set_id -> Integer,
        position -> Integer,
        title -> Text,
        scope -> Text,
        source_assay_id -> Nullable<Integer>,
        withdrawn_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    benchmark_item_files (item_id, file_id) {
        item_id -> Integer,
        file_id -> Text,
    }
}

diesel::table! {
    benchmark_gold (item_id, question_id) {
        item_id -> Integer,
        question_id -> Integer,
        text -> Text,
        cited_documents -> Text,
    }
}

diesel::table! {
    evaluation_runs (id) {
        id -> Integer,
        set_id -> Integer,
        label -> Text,
        base_url -> Nullable<Text>,
        model -> Text,
        prompt_version -> Text,
        concurrency -> Integer,
        price_prompt_per_mtok -> Nullable<Double>,
        price_completion_per_mtok -> Nullable<Double>,
        status -> Text,
        notes -> Text,
        created_by -> Nullable<Integer>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
    }
}

diesel::table! {
    evaluation_answers (id) {
        id -> Integer,
        run_id -> Integer,
        item_id -> Integer,
        question_id -> Integer,
        text -> Text,
        evidence -> Text,
        failed -> Bool,
        abstained -> Bool,
        gold_abstained -> Nullable<Bool>,
        token_f1 -> Nullable<Double>,
        rouge_l -> Nullable<Double>,
        cosine -> Nullable<Double>,
        citations -> Integer,
        verified_citations -> Integer,
        cited_file_agreement -> Nullable<Double>,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
    }
}

diesel::table! {
    llm_configurations (id) {
        id -> Integer,
        name -> Text,
        base_url -> Text,
        model -> Text,
        api_key_env -> Text,
        context_window -> Integer,
        price_prompt_per_mtok -> Nullable<Double>,
        price_completion_per_mtok -> Nullable<Double>,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    drafting_runs (id) {
        id -> Integer,
        assay_id -> Integer,
        job_id -> Nullable<Integer>,
        configuration_id -> Nullable<Integer>,
        configuration_name -> Text,
        model -> Text,
        price_prompt_per_mtok -> Nullable<Double>,
        price_completion_per_mtok -> Nullable<Double>,
        status -> Text,
        message -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
    }
}

diesel::table! {
    cleanup_runs (id) {
        id -> Integer,
        started_at -> Timestamp,
        finished_at -> Timestamp,
        deleted -> Integer,
        skipped -> Integer,
        errors -> Integer,
        names_forgotten -> Integer,
    }
}

diesel::table! {
    storage_checks (id) {
        id -> Integer,
        started_at -> Timestamp,
        finished_at -> Timestamp,
        rehashed -> Bool,
        repaired -> Bool,
        summary -> Text,
        findings -> Text,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Integer,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    workspace_members (id) {
        id -> Integer,
        workspace_id -> Integer,
        person_id -> Integer,
        role -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    workspace_investigations (id) {
        id -> Integer,
        workspace_id -> Integer,
        investigation_id -> Integer,
        shared_by -> Nullable<Integer>,
        shared_at -> Timestamp,
    }
}

diesel::table! {
    workspace_events (id) {
        id -> Integer,
        workspace_id -> Nullable<Integer>,
        workspace_name -> Text,
        kind -> Text,
        actor_id -> Nullable<Integer>,
        actor -> Text,
        subject_id -> Nullable<Integer>,
        subject -> Text,
        investigation_id -> Nullable<Integer>,
        investigation -> Text,
        detail -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(sections -> question_sets (question_set_id));
diesel::joinable!(subsections -> sections (section_id));
diesel::joinable!(questions -> subsections (subsection_id));
diesel::joinable!(investigations -> persons (owner_id));
diesel::joinable!(password_resets -> persons (person_id));
diesel::joinable!(studies -> investigations (investigation_id));
diesel::joinable!(assays -> studies (study_id));
diesel::joinable!(assays -> question_sets (question_set_id));
diesel::joinable!(answers -> assays (assay_id));
diesel::joinable!(answers -> questions (question_id));
diesel::joinable!(answer_edits -> answers (answer_id));
diesel::joinable!(answer_edits -> persons (editor_id));
diesel::joinable!(answer_files -> answers (answer_id));
diesel::joinable!(answer_files -> file_assets (file_id));
diesel::joinable!(file_assets -> persons (uploaded_by));
diesel::joinable!(file_passages -> file_assets (file_id));
diesel::joinable!(answer_citations -> answers (answer_id));
diesel::joinable!(answer_citations -> file_assets (file_id));
diesel::joinable!(benchmark_sets -> question_sets (question_set_id));
diesel::joinable!(benchmark_items -> benchmark_sets (set_id));
diesel::joinable!(benchmark_items -> assays (source_assay_id));
diesel::joinable!(benchmark_item_files -> benchmark_items (item_id));
diesel::joinable!(benchmark_item_files -> file_assets (file_id));
diesel::joinable!(benchmark_gold -> benchmark_items (item_id));
diesel::joinable!(benchmark_gold -> questions (question_id));
diesel::joinable!(evaluation_runs -> benchmark_sets (set_id));
diesel::joinable!(evaluation_answers -> evaluation_runs (run_id));
diesel::joinable!(evaluation_answers -> benchmark_items (item_id));
diesel::joinable!(evaluation_answers -> questions (question_id));
diesel::joinable!(drafting_runs -> assays (assay_id));
diesel::joinable!(drafting_runs -> llm_configurations (configuration_id));

diesel::joinable!(workspace_members -> workspaces (workspace_id));
diesel::joinable!(workspace_members -> persons (person_id));
diesel::joinable!(workspace_investigations -> workspaces (workspace_id));
diesel::joinable!(workspace_investigations -> investigations (investigation_id));
diesel::joinable!(workspace_events -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    persons,
    question_sets,
    sections,
    subsections,
    questions,
    question_context_subsections,
    investigations,
    studies,
    assays,
    answers,
    answer_edits,
    file_assets,
    answer_files,
    file_download_logs,
    file_audit_events,
    jobs,
    file_passages,
    answer_citations,
    login_failures,
    benchmark_sets,
    benchmark_items,
    benchmark_item_files,
    benchmark_gold,
    evaluation_runs,
    evaluation_answers,
    storage_checks,
    cleanup_runs,
    llm_configurations,
    drafting_runs,
    password_resets,
    workspaces,
    workspace_members,
    workspace_investigations,
    workspace_events,
);
